"""`notos review`, `notos export argilla`, `notos import argilla`, `notos push`."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer

from notos.errors import NotosError

IN = typer.Argument(..., help="A notos run folder, a notos curate output, or preference data (UltraFeedback records, generic form, completions table, TRL pairs).")
EDITS_DIR = typer.Option(None, "--edits-dir", help="Folder of the edits log (default: DIR/review, or FILE's folder/<stem>.review).")
STRATEGY = typer.Option(None, "--strategy", help="Binarization that decides chosen / rejected: mean (Notus), overall (critique score) or best-worst (default: the curate output's, else mean).")
ARGILLA_OUT = typer.Option(..., "--out", "-o", help="New folder for the Argilla dataset (the SDK's to_disk format).")
RECORDS = typer.Argument(..., help="Records the Argilla SDK exported: records.json, or a to_disk folder.")
DATA = typer.Option(..., "--data", help="The data the Argilla dataset was exported from (as given to notos export argilla).")
PUSH_IN = typer.Argument(..., help="A notos run folder or curate output.")
REPO_ID = typer.Argument(..., help="Hub dataset repository, owner/name.")
CARD_OUT = typer.Option(None, "--out", "-o", help="With --card-only: where README.md goes (default: INPUT/README.md).")
SEED = typer.Option(None, "--seed", help="Seed of binarize's random choices (default: the curate output's, else 0).")

export_app = typer.Typer(help="Hand data to other tools.", no_args_is_help=True)
import_app = typer.Typer(help="Read other tools' annotations back as edits.", no_args_is_help=True)


def review(
    input: Path = IN, port: int = typer.Option(0, "--port", min=0, max=65535, help="Port (0: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Listen address. Anything but 127.0.0.1 exposes the data (token-protected) to the network: a warning says so."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the URL; open no browser."),
    edits_dir: Path = EDITS_DIR, strategy: str = STRATEGY, seed: int = SEED,
):
    """Open a local web page to find and fix what the machine doubts; edits go to an append-only log."""
    from notos.review import server
    from notos.review.session import open_session

    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: --host {host}: the review server is reachable from the network; anyone with the URL's "
              "token can read and edit", file=sys.stderr)
    started = time.perf_counter()
    session = open_session(input, edits_dir, strategy, seed, wait=False)  # a first start audits in the background
    session.log.folder.mkdir(parents=True, exist_ok=True)
    running = server.start(session, host=host, port=port, log_path=session.log.folder / "access.log")
    later = " (the audit runs in the background: flags come in a few seconds)" if session.pending()["audit_pending"] else ""
    typer.echo(f"review of {session.index.n} records ({session.completions.table.num_rows} completions) ready in "
               f"{time.perf_counter() - started:.1f}s{later}; edits go to {session.log.path}")
    typer.echo(f"open {running.url}   (Ctrl-C stops)", )
    sys.stdout.flush()
    if not no_browser:
        import webbrowser

        webbrowser.open(running.url)
    stop_on_signals()
    try:
        while running.thread.is_alive() and not session.wait_loaded(0.5):
            pass
        # Here, on the main thread: Arrow's allocator (mimalloc) hands back the pages the loading
        # threads freed (~200 MB at 64k prompts) only when the main thread asks.
        release_unused_memory()
        while running.thread.is_alive():
            running.thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
    typer.echo(f"stopped; {session.summary()['edits']} edits in {session.log.path}")


@export_app.command("argilla")
def export_argilla(
    input: Path = IN, out: Path = ARGILLA_OUT,
    name: str = typer.Option("notos-review", "--name", help="Argilla dataset name."),
    api_url: str = typer.Option(None, "--api-url", help="Also push to this running Argilla server."),
    api_key_env: str = typer.Option("ARGILLA_API_KEY", "--api-key-env", help="Environment variable holding the Argilla API key (never written anywhere)."),
    workspace: str = typer.Option(None, "--workspace", help="Argilla workspace (default: the server's default)."),
    edits_dir: Path = EDITS_DIR, strategy: str = STRATEGY, seed: int = SEED,
):
    """Build an Argilla v2 dataset (fields, rating / label questions, metadata, AI-feedback suggestions)."""
    from notos.review.argilla_io import export_argilla as run
    from notos.review.session import open_session

    session = open_session(input, edits_dir, strategy, seed)
    key = os.environ.get(api_key_env) if api_url else None
    result = run(session, out, name=name, api_url=api_url, api_key=key, workspace=workspace)
    typer.echo(f"wrote {result['records']} records, {result['questions']} questions to {result['out']}"
               + (f"; pushed to {result['pushed']}" if result["pushed"] else ""))


@import_app.command("argilla")
def import_argilla(
    records: Path = RECORDS,
    data: Path = DATA,
    edits_dir: Path = EDITS_DIR, strategy: str = STRATEGY, seed: int = SEED,
):
    """Turn annotators' Argilla responses into entries of the edits log."""
    from notos.review.argilla_io import import_argilla as run
    from notos.review.session import open_session

    if not records.exists():
        raise NotosError(f"{records}: no such file or folder")
    session = open_session(data, edits_dir, strategy, seed)
    edits = run(records, session)
    session.log.append(edits)
    typer.echo(f"imported {len(edits)} edits into {session.log.path}")


def push(
    input: Path = PUSH_IN,
    repo_id: str = REPO_ID,
    card_only: bool = typer.Option(False, "--card-only", help="Write the dataset card (README.md) locally; push nothing."),
    out: Path = CARD_OUT,
    license: str = typer.Option("other", "--license", help="License field of the card (e.g. mit, apache-2.0, cc-by-4.0)."),
    private: bool = typer.Option(False, "--private", help="Create the repository private."),
    token_env: str = typer.Option("HF_TOKEN", "--token-env", help="Environment variable holding a Hub token (never written anywhere)."),
):
    """Push a run / curate output to the Hugging Face Hub with a generated dataset card."""
    from notos.review import hub

    if not input.exists():
        raise NotosError(f"{input}: no such file or folder")
    if "/" not in repo_id or repo_id.count("/") != 1:
        raise NotosError(f"REPO_ID '{repo_id}': expected owner/name")
    if card_only:
        target = out or (input if input.is_dir() else input.parent)
        typer.echo(f"wrote {hub.write_card(input, target, license=license, repo_id=repo_id)}")
        return
    typer.echo(f"pushed to {hub.push(input, repo_id, token=os.environ.get(token_env), private=private, license=license)}")


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop the server cleanly. Set explicitly: a process started in
    the background of a script inherits SIGINT ignored, and Python then leaves it ignored."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def release_unused_memory() -> None:
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def register(app) -> None:
    """Add this package's commands to the top-level Typer app (called once per process)."""
    app.command(name="review")(review)
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")
    app.command(name="push")(push)
