"""The output folder every `notos curate` command writes, and its report.

A command writes into a fresh temporary folder beside OUT and swaps it in at the end
(`notos.data.atomic.replace_folder`), so a failure half-way leaves the previous OUT as it was.
OUT must be new, empty, or an earlier output of notos curate: anything else is refused rather
than overwritten.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from notos.curate import report as sections
from notos.data.atomic import recover_folder, replace_folder, temp_path
from notos.errors import NotosError
from notos.report import html as page

TOOL = "notos curate"


@contextmanager
def writing(out: Path, command: str, input_path: Path, options: dict):
    """The work folder of one command: removed if the command fails, so OUT stays as it was."""
    work = start(out, command, input_path, options)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def start(out: Path, command: str, input_path: Path, options: dict) -> Path:
    out, input_path = Path(out).resolve(), Path(input_path).resolve()
    if out == input_path or out in input_path.parents:
        raise NotosError(f"--out {out}: it would overwrite the input {input_path}; choose another folder")
    recover_folder(out)  # a swap a crash cut short: the previous output comes back first
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and _tool_of(out) != TOOL)):
        raise NotosError(f"--out {out}: exists and is not an output of notos curate; choose another folder")
    work = temp_path(out)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = {"tool": TOOL, "command": command, "input": str(input_path), "options": options, "out": str(out)}
    (work / "config.json").write_text(json.dumps(config, indent=2))
    return work


def _tool_of(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text()).get("tool")
    except (OSError, ValueError, AttributeError):
        return None


def read_input(input_path: Path, format: str):
    from notos.data.records import read_completions

    return read_completions(input_path, format=format)


def read_input_raw(input_path: Path, format: str):
    from notos.data.records import normalize, read_raw

    raw = read_raw(input_path)
    return raw, normalize(raw, format=format, origin=str(input_path))


def keep_rows(raw: pa.Table, kept, origin: str) -> pa.Table:
    """The raw input rows whose prompt survived, in the input's own shape, with their ids."""
    from notos.data.records import COMPLETION_COLUMNS, prompt_ids

    if set(COMPLETION_COLUMNS) <= set(raw.column_names):
        return kept.table  # the input was a completions table already
    ids = prompt_ids(raw, origin)
    wanted = pc.unique(kept.table.column("prompt_id"))
    return with_ids(raw, ids).filter(pc.is_in(ids, value_set=wanted))


def with_ids(raw: pa.Table, ids) -> pa.Table:
    """Records that carry their prompt id, so a chain of commands keeps pointing at the original
    prompts: without an id column the id is the record's position, which a removal shifts."""
    from notos.data.records import ID_COLUMNS

    if any(name in raw.column_names for name in ID_COLUMNS):
        return raw
    return raw.append_column("prompt_id", ids)


def call_binarize(run, completions, strategy: str, min_margin: float, seed: int):
    from notos.curate.binarize import binarize_stats

    pairs = run(completions, strategy, min_margin=min_margin, seed=seed)
    return pairs, binarize_stats(pairs)


def removal_summary(before, kept, removals: pa.Table, sources_to_drop=("truthful_qa",)) -> dict:
    """Counts by reason, and the source rule spelled out: a whole benchmark's source (truthful_qa)
    goes whatever its text, which surprises when it is not said."""
    reasons = pc.value_counts(removals.column("reason")).to_pylist() if removals.num_rows else []
    by_reason = {r["values"]: r["counts"] for r in reasons}
    by_source = by_reason.get("source", 0)
    source_rows = removals.filter(pc.equal(removals.column("reason"), "source")) if removals.num_rows else removals
    also_text = int(pc.sum(pc.is_valid(source_rows.column("benchmark_id"))).as_py() or 0) if by_source else 0
    names = ", ".join(sources_to_drop) or "(none)"
    return {"prompts_in": before.num_prompts, "prompts_kept": kept.num_prompts, "prompts_removed": removals.num_rows,
            "removed_by_source": by_source, "removed_by_text": removals.num_rows - by_source,
            "removed_by_reason": by_reason,
            "source_rule": (f"{by_source} prompts removed because their source is {names} (--drop-source), "
                            f"{also_text} of which also match a benchmark text; {removals.num_rows - by_source} "
                            "removed by text match (exact or n-gram). To keep the source's prompts, pass "
                            "--drop-source none: text matches are still removed.")}


def cluster_summary(before, kept, clusters: pa.Table) -> dict:
    dropped = clusters.filter(pc.invert(clusters.column("kept"))) if clusters.num_rows else clusters
    reasons = pc.value_counts(dropped.column("reason")).to_pylist() if dropped.num_rows else []
    return {"prompts_in": before.num_prompts, "prompts_kept": kept.num_prompts, "prompts_removed": dropped.num_rows,
            "removed_by_reason": {r["values"]: r["counts"] for r in reasons}}


def examples_table(comparison: dict) -> pa.Table:
    examples = comparison.get("examples") or []
    return pa.Table.from_pylist([{k: _plain(v) for k, v in e.items()} for e in examples]) if examples else \
        pa.table({"prompt_id": pa.array([], pa.string())})


def _plain(value):
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def write_extra(folder: Path, name: str, table: pa.Table) -> None:
    pq.write_table(table, folder / f"{name}.parquet")


def finish(folder: Path, data: pa.Table | None, stats: dict, jsonl: bool) -> Path:
    """Write the data (None: data.parquet is written already), stats.json and report.html, then
    swap the folder in."""
    from notos.data.io import write_rows
    from notos.data.tables import write_table

    if data is not None:
        write_table(data, folder, formats=("parquet", "jsonl") if jsonl else ("parquet",))
    elif jsonl:
        write_rows(str(folder / "data.jsonl"), pq.read_table(folder / "data.parquet"))
    (folder / "stats.json").write_text(json.dumps(stats, indent=2, default=str))
    build_report(folder)
    final = Path(json.loads((folder / "config.json").read_text())["out"])
    return replace_folder(folder, final)


def print_summary(command: str, stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"notos curate {command}", show_header=False)
    for key, value in stats.items():
        if isinstance(value, (int, float, str)) or value is None:
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        elif isinstance(value, dict) and value and all(isinstance(v, (int, float)) for v in value.values()):
            table.add_row(key, ", ".join(f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items()))
    Console().print(table)


# --- the report -------------------------------------------------------------------------------
# Drawn from stats.json (its "report" part: counts the run kept, `notos.curate.tally`) and the
# small files beside it; never from the input, which may be gone or gigabytes.

def build_report(folder: Path) -> Path:
    folder = Path(folder)
    if _tool_of(folder) != TOOL:
        raise NotosError(f"{folder}: not an output folder of notos curate (no config.json from it)")
    config = json.loads((folder / "config.json").read_text())
    stats = json.loads((folder / "stats.json").read_text()) if (folder / "stats.json").exists() else {}
    command = config["command"]
    figures = [{"figure": k, "value": v} for k, v in stats.items() if not isinstance(v, (dict, list))]
    parts = [f"<p>Input: <code>{config['input']}</code>; options: <code>{json.dumps(config['options'])}</code></p>",
             page.table_html(figures) if figures else ""]
    parts += SECTIONS[command](folder, stats)
    return page.write_report(folder, f"notos curate {command}", parts)


def _head(folder: Path, name: str, rows: int = 20) -> list[dict]:
    path = folder / f"{name}.parquet"
    if not path.exists():
        return []
    table = pq.ParquetFile(path).iter_batches(batch_size=rows)
    first = next(table, None)
    return [] if first is None else first.to_pylist()


def _audit_sections(summary: dict, report: dict) -> list[str]:
    return [sections.flag_overview(summary), sections.heat_section(report), sections.rating_section(report),
            *sections.flag_sections(summary, report.get("examples") or {})]


def _audit_command(folder, stats):
    return _audit_sections(stats, stats.get("report") or {})


def _removal_command(name, title):
    def draw(folder, stats):
        return [sections.removal_section(title, stats, _head(folder, name))]
    return draw


def _binarize_command(folder, stats):
    report = stats.get("report") or {}
    return [sections.length_section(report, stats.get("strategy", "")), sections.rating_section(report),
            "<h2>Pairs</h2>" + page.table_html(_pair_rows(folder / "data.parquet"))]


def _pair_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    columns = ["prompt_id", "source", "score_chosen", "score_rejected", "model_chosen", "model_rejected",
               "index_chosen", "index_rejected"]
    first = next(pq.ParquetFile(path).iter_batches(batch_size=20, columns=columns), None)
    return [] if first is None else first.to_pylist()


def _compare_sections(comparison: dict, report: dict) -> list[str]:
    share = 100 * (comparison.get("chosen_differs") or 0)
    out = [(f"<h2>How often the strategies disagree</h2><p>Of {comparison.get('n', 0)} prompts paired by both "
            f"strategies, the chosen response differs for {comparison.get('n_chosen_differs', 0)} ({share:.1f}%).</p>")]
    for key in ("by_source", "by_model"):
        rows = comparison.get(key)
        if isinstance(rows, dict):
            rows = [{"group": k, **v} if isinstance(v, dict) else {"group": k, "value": v} for k, v in rows.items()]
        if rows:
            out.append(f"<h3>Disagreement {key.replace('_', ' ')}</h3>" + page.table_html(rows))
    for name in (comparison.get("strategies") or {}).values():
        out.append(sections.length_section(report, name))
    return out


def _compare_command(folder, stats):
    return _compare_sections(stats, stats.get("report") or {})


def _all_command(folder, stats):
    """Findings first (what a person reads the page for), then what was removed."""
    report = stats.get("report") or {}
    out = []
    if stats.get("audit"):
        out += _audit_sections(stats["audit"], report)
    if stats.get("compare"):
        out += _compare_sections(stats["compare"], report)
    elif stats.get("binarize"):
        out += [sections.length_section(report, name) for name in stats["binarize"]]
    for name, title in (("removals", "Decontamination"), ("clusters", "Duplicates")):
        if stats.get(name):
            out.append(sections.removal_section(title, stats[name], _head(folder, name, rows=10)))
    return out


SECTIONS = {"audit": _audit_command, "decontaminate": _removal_command("removals", "Decontamination"),
            "dedup": _removal_command("clusters", "Duplicates"), "binarize": _binarize_command,
            "compare": _compare_command, "all": _all_command}
