"""Console tables for `notos run` and `notos show`."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from notos.errors import NotosError

console = Console(soft_wrap=True)  # paths must stay copy-pasteable, never wrapped


def stats_table(stats: dict, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("step", "rows in", "rows out", "failed", "from cache", "seconds", "rows/s", "tokens"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, s in stats.items():
        table.add_row(
            name, f"{s['rows_in']:,}", f"{s['rows_out']:,}", f"[red]{s['rows_failed']:,}[/red]" if s["rows_failed"] else "0",
            f"{s['rows_cached']:,}", f"{s['seconds']:.2f}", _rate(s.get("rows_per_s")), f"{s['tokens']:,}",
        )
    return table


def _rate(rows_per_s) -> str:
    if not rows_per_s:
        return "-"
    return f"{rows_per_s:,.0f}" if rows_per_s >= 10 else f"{rows_per_s:.2g}"


def print_run_summary(result) -> None:
    console.print(stats_table(result.stats, f"run finished in {result.seconds:.1f} s"))
    for leaf, rows in result.rows.items():
        console.print(f"  {leaf}: {rows:,} rows in {result.out_dir / 'data' / leaf}")
    console.print(f"  load it: notos.load_run('{result.out_dir}')")


def print_plan(pipeline, columns: dict) -> None:
    console.print(f"pipeline '{pipeline.name}' is valid: {len(pipeline.steps)} steps, batch size {pipeline.batch_size}")
    for step in pipeline.steps:
        after = f" after {', '.join(p.name for p in step.parents)}" if step.parents else ""
        cols = ", ".join(c for c in columns[step.name] if c != "row_id")
        console.print(f"  {step.name} ({step.type_name}, {step.kind}){after} -> {cols}")


def print_run_folder(run_dir: Path) -> None:
    manifest_path = Path(run_dir) / "manifest.json"
    if not manifest_path.exists():
        raise NotosError(f"{run_dir}: not a notos run folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    console.print(f"pipeline '{manifest.get('pipeline')}': {manifest.get('status')} (started {manifest.get('started_at')})")
    if manifest.get("error"):
        console.print(f"  error: {manifest['error']}")
    stats_path = Path(run_dir) / "stats.json"
    if stats_path.exists():
        console.print(stats_table(json.loads(stats_path.read_text()), "per-step stats"))
    for leaf, rel in manifest.get("leaves", {}).items():
        console.print(f"  {leaf}: {(manifest.get('rows') or {}).get(leaf, '?')} rows in {Path(run_dir) / rel}")


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
