"""Console tables for `notos run` and `notos show`."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from notos.errors import NotosError

console = Console(soft_wrap=True)  # paths must stay copy-pasteable, never wrapped


UNREAD_WARNING = 0.2  # a step that could not read more than this share of its answers is called out


# Columns that give way, in this order, when the table would not fit the terminal: a step's
# name and its counts are never cut (rich would truncate them to "answer…" and "1,2…").
OPTIONAL_COLUMNS = ("rows/s", "cached", "s", "out")


def stats_table(stats: dict, title: str, width: int | None = None) -> Table:
    """One row per step; at 80 columns the least needed columns give way before anything is cut."""
    steps = {name: s for name, s in stats.items() if not name.startswith("_") and isinstance(s, dict)}  # not `_totals`
    cells = {name: {
        "in": f"{s['rows_in']:,}", "out": f"{s['rows_out']:,}", "failed": f"{s['rows_failed']:,}",
        "unread": f"{s.get('rows_unparsed', 0):,}", "cached": f"{s['rows_cached']:,}", "s": f"{s['seconds']:.1f}",
        "rows/s": _rate(s.get("rows_per_s") or _per_s(s)), "tokens": _compact(s["tokens"]),
    } for name, s in steps.items()}
    columns = ["in", "out", "failed", "unread", "cached", "s", "rows/s", "tokens"]

    def needed(cols):  # each column: its widest cell + 3 (padding and border)
        return 4 + max((len(n) for n in steps), default=4) + sum(
            3 + max([len(c)] + [len(cells[n][c]) for n in steps]) for c in cols)

    room = width or console.width
    for column in OPTIONAL_COLUMNS:
        if needed(columns) <= room:
            break
        columns.remove(column)
    table = Table(title=title, title_justify="left")
    table.add_column("step", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for name, s in steps.items():
        row = dict(cells[name])
        if s["rows_failed"]:
            row["failed"] = f"[red]{row['failed']}[/red]"
        if s.get("rows_unparsed"):
            row["unread"] = f"[yellow]{row['unread']}[/yellow]"
        table.add_row(escape(name), *(row[c] for c in columns))
    return table


def _compact(number: int) -> str:
    """1,234 as is; 1.2M for large token counts (the exact figure is in stats.json)."""
    return f"{number / 1e6:.1f}M" if number >= 10_000_000 else f"{number:,}"


def _per_s(s: dict):
    return s["rows_in"] / s["seconds"] if s.get("seconds") else None


def _rate(rows_per_s) -> str:
    if not rows_per_s:
        return "-"
    return f"{rows_per_s:,.0f}" if rows_per_s >= 10 else f"{rows_per_s:.2g}"


def unread_warnings(stats: dict) -> list[str]:
    """One line per step that could not read much of what its LLM answered (a judge whose
    replies never parse must not pass for a quiet success)."""
    lines = []
    for name, s in stats.items():
        if name.startswith("_") or not isinstance(s, dict) or not s.get("rows_in"):
            continue
        unread, computed = s.get("rows_unparsed", 0), s["rows_in"] - s.get("rows_failed", 0)
        if computed > 0 and unread / computed > UNREAD_WARNING:
            lines.append(f"warning: step '{name}' could not read the answer of {unread:,} of {computed:,} rows "
                         f"({unread / computed:.0%}; the reasons are in its *_error columns). A stronger judge, "
                         f"--retry-unparsed, or --set {name}.reask_unparsed=2 may help.")
    return lines


def print_run_summary(result) -> None:
    console.print(stats_table(result.stats, f"run finished in {result.seconds:.1f} s"))
    for leaf, rows in result.rows.items():
        console.print(f"  {leaf}: {rows:,} rows in {str(result.out_dir).rstrip('/')}/data/{leaf}")
    console.print(f"  load it: notos.load_run('{result.out_dir}')")
    for line in unread_warnings(result.stats):
        Console(stderr=True, soft_wrap=True).print(escape(line), style="yellow")


def print_plan(pipeline, columns: dict) -> None:
    console.print(f"pipeline '{pipeline.name}' is valid: {len(pipeline.steps)} steps, batch size {pipeline.batch_size}")
    for step in pipeline.steps:
        after = f" after {', '.join(p.name for p in step.parents)}" if step.parents else ""
        cols = ", ".join(c for c in columns[step.name] if c != "row_id")
        console.print(f"  {step.name} ({step.type_name}, {step.kind}){after} -> {cols}")


# What a notos output folder other than a run holds, by the file that marks it (`notos show`).
FOLDER_SUMMARIES = (("notos-train.json", "training output"), ("summary.json", "evaluation"),
                    ("compare.json", "evaluation comparison"), ("stats.json", "curation output"))


def print_run_folder(run_dir: Path) -> None:
    manifest_path = Path(run_dir) / "manifest.json"
    if not manifest_path.exists() and Path(run_dir).is_dir():
        for marker, kind in FOLDER_SUMMARIES:
            if (Path(run_dir) / marker).is_file():
                return print_summary_folder(Path(run_dir), marker, kind)
    if not manifest_path.exists():
        raise NotosError(f"{run_dir}: not a notos output folder (no manifest.json, stats.json, summary.json "
                         "or notos-train.json)")
    manifest = _read_json(manifest_path, "run manifest")
    status = run_status(manifest)
    console.print(f"pipeline '{manifest.get('pipeline')}': {status} (started {manifest.get('started_at')})", highlight=False)
    if manifest.get("error"):
        console.print(f"  error: {escape(str(manifest['error']))}", highlight=False)
    stats_path = Path(run_dir) / "stats.json"
    if stats_path.exists():
        stats = _read_json(stats_path, "run stats")
        console.print(stats_table(stats, "per-step stats (last invocation)"))
        if len({s.get("invocations") for s in (stats.get("_totals") or {}).values()} - {None, 1}):
            console.print(stats_table(stats["_totals"], "per-step totals (every invocation in this folder)"))
    for leaf, rel in manifest.get("leaves", {}).items():
        console.print(f"  {leaf}: {(manifest.get('rows') or {}).get(leaf, '?')} rows in {Path(run_dir) / rel}")
    if status != "complete":
        lines = committed_summary(Path(run_dir), manifest)
        console.print("  committed so far (a rerun resumes from here):" if lines else "  nothing committed yet", highlight=False)
        for line in lines:
            console.print(f"    {line}", highlight=False)


def print_summary_folder(folder: Path, marker: str, kind: str) -> None:
    """A curate, train or eval folder: its summary file's figures, one per line (nested ones
    dotted), and the files a person opens next."""
    summary = _read_json(folder / marker, kind + " summary")
    console.print(f"{folder}: {kind}", highlight=False)
    for key, value in _flat(summary)[:60]:
        console.print(f"  {escape(key)}: {escape(value)}", highlight=False)
    for name in ("report.html", "README.md", "data.parquet", "model", "merged", "pairs"):
        if (folder / name).exists():
            console.print(f"  {name}: {folder / name}", highlight=False)


def _flat(value, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, short text) for every scalar in a JSON summary; long lists are counted."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flat(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        if len(value) <= 5 and all(not isinstance(v, (dict, list)) for v in value):
            return [(prefix.rstrip("."), ", ".join(map(str, value)))]
        return [(prefix.rstrip("."), f"{len(value)} entries")]
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return [(prefix.rstrip("."), text if len(text) <= 100 else text[:97] + "...")]


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotosError(f"{path}: unreadable {what} ({type(exc).__name__}); move the folder aside or rerun into it") from None
    if not isinstance(data, dict):
        raise NotosError(f"{path}: unreadable {what} (not a JSON object); move the folder aside or rerun into it")
    return data


def run_status(manifest: dict) -> str:
    """The manifest's status, unless it says running and the process that wrote it is gone:
    then the run was interrupted (killed, or crashed before it could say so)."""
    status = str(manifest.get("status"))
    if status != "running":
        return status
    process = manifest.get("process") if isinstance(manifest.get("process"), dict) else {}
    pid = process.get("pid")
    if not isinstance(pid, int):
        return "running (or interrupted: this folder's manifest does not say which process runs it)"
    if process.get("host") != socket.gethostname():
        return f"running (pid {pid} on host {process.get('host')}, not checked from here)"
    if _alive(pid, process.get("started")):
        return f"running (pid {pid})"
    return f"interrupted (its process, pid {pid}, is gone; rerun the same command to resume)"


def _alive(pid: int, started) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return False
        return fields[0] != "Z" and (started is None or fields[19] == str(started))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def committed_summary(run_dir: Path, manifest: dict) -> list[str]:
    """What each step has committed in the run folder (read from the part files' footers)."""
    import pyarrow.parquet as pq

    lines = []
    for name, entry in (manifest.get("steps") or {}).items():
        folder = run_dir / str((entry or {}).get("cache", ""))
        if not entry or not entry.get("cache") or not folder.is_dir():
            continue
        parts = sorted(folder.glob("part-*.parquet"))
        empty = len(list(folder.glob("part-*.empty")))
        failed = len(list(folder.glob("part-*.failed")))
        if not parts and not empty:
            continue
        rows = 0
        for part in parts:
            with contextlib.suppress(Exception):  # a damaged part is counted as no rows
                rows += pq.ParquetFile(part).metadata.num_rows
        extra = f", {failed} with failed rows" if failed else ""
        lines.append(f"{name}: {len(parts) + empty} batches, {rows:,} rows{extra}")
    return lines


def print_models(models: list[dict], backends: list[dict]) -> None:
    table = Table(title="models available offline", title_justify="left")
    for column in ("model", "spec", "size MB", "ready"):
        table.add_column(column)
    for m in models:
        table.add_row(m["name"], m["spec"], "-" if m["size_mb"] is None else f"{m['size_mb']:,}",
                      "[green]yes[/green]" if m["ready"] else "[yellow]no[/yellow]")
    console.print(table)
    for m in models:  # full paths below the table: a table cell would cut them
        console.print(f"  {escape(m['name'])}: {escape(m['where'])}", highlight=False)
    table = Table(title="backends", title_justify="left")
    for column in ("backend", "spec", "ready", "note"):
        table.add_column(column)
    for b in backends:
        table.add_row(b["backend"], escape(b["spec"]), "[green]yes[/green]" if b["ready"] else "[yellow]no[/yellow]", escape(b["note"]))
    console.print(table)
