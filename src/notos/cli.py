"""The `notos` command line. Every user error is one line on stderr and exit code 2; a run that
finishes with every row of a leaf failed is one line and exit code 3."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

from notos.errors import NotosError

app = typer.Typer(
    help="notos: build preference data with AI feedback, curate it, train with DPO, evaluate.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)


def _add_sub_apps() -> None:
    """`notos eval ...` and `notos curate ...` (once per process: main() may run many times)."""
    if any(group.name == "eval" for group in app.registered_groups):
        return
    from notos.curate.cli import curate_app, report
    from notos.evaluate.cli import eval_app

    app.add_typer(curate_app, name="curate")
    app.command(name="report")(report)
    app.add_typer(eval_app, name="eval")
    from notos.train.cli import train_app

    app.add_typer(train_app, name="train")
    from notos.recipes.loop_cli import register as register_loop
    from notos.review.cli import register as register_review

    register_loop(app)
    register_review(app)


@app.command()
def run(
    pipeline: str = typer.Argument(..., help="Pipeline YAML file, or a shipped recipe name (see `notos recipes`)."),
    out: str = typer.Option(None, "--out", "-o", help="Run folder (default: runs/<pipeline name>), or s3://bucket/prefix (any URI pyarrow or fsspec opens). Rerun on the same folder to resume."),
    input: Path = typer.Option(None, "--input", "-i", help="Replace the pipeline's source data with this JSONL / Parquet / CSV file."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="Read at most this many rows from the source."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override an option: step.option=value (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate the pipeline and print it; run nothing."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show per-step progress bars."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="On resume, run the rows that failed before (429s, timeouts, outages) through their steps again; rows that succeeded are kept."),
    retry_unparsed: bool = typer.Option(False, "--retry-unparsed", help="On resume, ask again the rows whose judge reply arrived but could not be read (no readable rating or score), sampled anew; rows read before are kept. In one run: --set STEP.reask_unparsed=N."),
    executor: str = typer.Option("local", "--executor", help="Who runs the batches: local (one process, the default), sync (one batch at a time, for debugging) or ray (a Ray cluster; pip install 'notos[ray]')."),
    ray_address: str = typer.Option(None, "--ray-address", help="With --executor ray: the cluster to join (auto, ray://HOST:10001); default: start a local one."),
    llm_base_url: str = typer.Option(None, "--llm-base-url", help="Point every LLM of the pipeline at this OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)."),
    llm_model: str = typer.Option(None, "--llm-model", help="Model name to ask that server for (default: the first one it lists)."),
    llm_models: str = typer.Option(None, "--llm-models", help="With --llm-base-url: spread the recipe's pool of generators over these models, in turn (m1,m2,m3), or over every model the server lists (all). The judges take --llm-model."),
    llm_api_key_env: str = typer.Option(None, "--llm-api-key-env", help="Environment variable holding that server's API key (the key itself is never written anywhere)."),
    llm_timeout: float = typer.Option(None, "--llm-timeout", help="Seconds each request to an LLM server may take, for every LLM of the pipeline served over HTTP (default 120)."),
    llm_max_retries: int = typer.Option(None, "--llm-max-retries", min=0, help="Retries of a failed request (429, 5xx, timeout, connection error), for every LLM served over HTTP (default 6)."),
):
    """Run a pipeline, or resume it: committed batches are skipped, changed steps rerun.

    Exit code 3: the run finished but a leaf has no row without an error (every row failed)."""
    from notos.pipeline import run as run_pipeline
    from notos.pipeline.executors import executor_named
    from notos.recipes import load_pipeline
    from notos.recipes.catalog import all_embedded
    from notos.report.console import print_plan, print_run_summary

    if ray_address and executor != "ray":
        raise NotosError("--ray-address goes with --executor ray")
    runner = executor_named(executor, ray_address=ray_address)
    if input is not None and not input.exists():
        raise NotosError(f"--input {input}: no such file")
    if (llm_model or llm_api_key_env or llm_models) and not llm_base_url:
        raise NotosError("--llm-model, --llm-models and --llm-api-key-env go with --llm-base-url")
    server = _server(llm_base_url, llm_model, llm_models, llm_api_key_env, llm_timeout, dry_run) if llm_base_url else None
    if llm_timeout is not None and not llm_timeout > 0:
        raise NotosError(f"--llm-timeout must be a positive number of seconds, got {llm_timeout:g}")
    client = {"timeout": llm_timeout, "max_retries": llm_max_retries}
    pipe, config = load_pipeline(pipeline, set_, str(input) if input else None, llm_server=server, llm_client=client)
    columns = pipe.validate()
    if dry_run:
        print_plan(pipe, columns)
        return
    out_dir = (out if "://" in out else Path(out)) if out else Path("runs") / pipe.name
    result = run_pipeline(pipe, out_dir, limit=limit, progress=progress, executor=runner, retry_failed=retry_failed,
                          retry_unparsed=retry_unparsed)
    print_run_summary(result)
    if server:
        _say_if_the_pool_collapsed(config, server)
    if config.get("note") and all_embedded(config):  # the quickstart's honesty note, while it applies
        typer.echo(str(config["note"]).strip())
    for leaf, rows in result.rows.items():
        if "://" in str(result.out_dir):
            continue  # an object store: the rows were counted, the leaves are not re-read here
        failed, first = _failed_rows(result.out_dir / "data" / leaf)
        if rows and failed >= rows:
            raise NoRowOk(f"leaf '{leaf}': all {rows:,} rows failed ({first}); fix the cause, then rerun with --retry-failed")


def _server(base_url: str, model: str | None, models: str | None, api_key_env: str | None, timeout: float | None,
            dry_run: bool) -> dict:
    """`--llm-base-url` and its companions, with the server's model names resolved before the
    run, so pipeline.yaml records the model each step asks for (a dry run asks the server nothing)."""
    from notos.llms.http_client import served_models
    from notos.llms.spec import point_at_server

    point_at_server(base_url, model, api_key_env)  # a key given where its variable's name belongs: refused first
    pool = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if models is not None and not pool:
        raise NotosError("--llm-models: give model names separated by commas, or all")
    served = []
    if not dry_run and (model is None or pool == ["all"]):
        served = served_models(base_url, api_key_env, timeout or 10.0)
    if pool == ["all"]:
        pool = served or None
    return {"base_url": base_url, "model": model or (served[0] if served else None), "api_key_env": api_key_env,
            "pool": pool, "served": served}


def _say_if_the_pool_collapsed(config: dict, server: dict) -> None:
    """A recipe's pool of generators asking one model is no pool: say so, and how to spread it."""
    from notos.recipes.catalog import pool_models

    generators, models = pool_models(config)
    if generators < 2 or len(models) > 1:
        return
    served = server.get("served") or []
    spread = (f"the server lists {len(served)}: spread the pool with --llm-models all (or --llm-models "
              f"{','.join(served[:generators])})") if len(served) > 1 else \
        "spread it over several models with --llm-models m1,m2,... (names the server serves)"
    print(f"note: --llm-base-url points all {generators} generators at one model ({models[0]}); {spread}",
          file=sys.stderr)


class NoRowOk(Exception):
    """A run finished, but a leaf holds no row without an error: exit code 3, one line."""

    exit_code = 3


def _failed_rows(folder: Path) -> tuple[int, str]:
    """(rows with an `_error`, the first such error in one short line) of a leaf's data folder."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    failed, first = 0, ""
    for part in sorted(folder.glob("*.parquet")):
        parquet = pq.ParquetFile(part)
        if "_error" not in parquet.schema_arrow.names:
            continue
        errors = parquet.read(columns=["_error"]).column("_error")
        failed += len(errors) - errors.null_count
        if not first and failed:
            first = str(pc.drop_null(errors)[0].as_py())
    return failed, " ".join(first.split())[:200]


@app.command()
def recipes():
    """List the recipes shipped with notos."""
    import yaml

    from notos.recipes import FOLDER, names

    for path in (FOLDER / f"{name}.yaml" for name in names()):
        description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        typer.echo(f"{path.stem:<16} {description.strip().splitlines()[0] if description else ''}")


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables.")):
    """List the models available offline (embedded, Hugging Face cache) and the LLM backends."""
    from notos.llms.catalog import backends, models as found_models
    from notos.report.console import print_models

    if as_json:
        import json

        typer.echo(json.dumps({"models": found_models(), "backends": backends()}, indent=2))
        return
    print_models(found_models(), backends())


@app.command()
def show(run_dir: Path = typer.Argument(..., help="A run, curate, train or eval folder.")):
    """Print a run's status, per-step stats and where its data is (or a curate, train or eval
    folder's figures)."""
    from notos.report.console import print_run_folder

    print_run_folder(run_dir)


def _cli_exceptions():
    """(usage errors, exit, abort) of the click that typer uses (typer >= 0.20 vendors one)."""
    try:
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
        from typer.exceptions import Abort, Exit
    except ImportError:
        from click.exceptions import Abort, ClickException, Exit, NoArgsIsHelpError
    return ClickException, Exit, Abort, NoArgsIsHelpError


class _StderrNow(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (main() may run many times in one process,
    e.g. under a test runner that captures output)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _show_step_notes() -> None:
    """Steps report what they dropped and why on the `notos` logger; the CLI shows those lines."""
    logger = logging.getLogger("notos")
    if not any(isinstance(h, _StderrNow) for h in logger.handlers):
        handler = _StderrNow()
        handler.setFormatter(logging.Formatter("note: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    usage_error, exit_, abort, no_args = _cli_exceptions()
    _show_step_notes()
    _add_sub_apps()
    try:
        app(args=argv, standalone_mode=False)
    except NotosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NoRowOk as exc:
        print(f"error: {exc}", file=sys.stderr)
        return NoRowOk.exit_code
    except no_args as exc:
        exc.show()
        return 2
    except usage_error as exc:
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "notos"
        print(f"error: {exc.format_message()} (see: {command} --help)", file=sys.stderr)
        return 2
    except exit_ as exc:
        return getattr(exc, "exit_code", 0)
    except abort:
        print("interrupted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted: committed batches are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, traceback on request
        if os.environ.get("NOTOS_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set NOTOS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
