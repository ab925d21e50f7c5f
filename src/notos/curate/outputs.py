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
    """The raw input rows whose prompt survived, in the input's own shape."""
    from notos.data.records import COMPLETION_COLUMNS, prompt_ids

    if set(COMPLETION_COLUMNS) <= set(raw.column_names):
        return kept.table  # the input was a completions table already
    wanted = pc.unique(kept.table.column("prompt_id"))
    return raw.filter(pc.is_in(prompt_ids(raw, origin), value_set=wanted))


def call_binarize(run, completions, strategy: str, min_margin: float, seed: int):
    from notos.curate.binarize import binarize_stats

    pairs = run(completions, strategy, min_margin=min_margin, seed=seed)
    return pairs, binarize_stats(pairs)


def removal_summary(before, kept, removals: pa.Table) -> dict:
    reasons = pc.value_counts(removals.column("reason")).to_pylist() if removals.num_rows else []
    return {"prompts_in": before.num_prompts, "prompts_kept": kept.num_prompts, "prompts_removed": removals.num_rows,
            "removed_by_reason": {r["values"]: r["counts"] for r in reasons}}


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


def finish(folder: Path, data: pa.Table, stats: dict, jsonl: bool) -> Path:
    from notos.data.tables import write_table

    write_table(data, folder, formats=("parquet", "jsonl") if jsonl else ("parquet",))
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

def build_report(folder: Path) -> Path:
    folder = Path(folder)
    if _tool_of(folder) != TOOL:
        raise NotosError(f"{folder}: not an output folder of notos curate (no config.json from it)")
    config = json.loads((folder / "config.json").read_text())
    stats = json.loads((folder / "stats.json").read_text()) if (folder / "stats.json").exists() else {}
    command = config["command"]
    sections = [f"<p>Input: <code>{config['input']}</code>; options: <code>{json.dumps(config['options'])}</code></p>",
                page.table_html([{"figure": k, "value": v} for k, v in stats.items() if not isinstance(v, (dict, list))])]
    sections += SECTIONS[command](folder, stats, config)
    return page.write_report(folder, f"notos curate {command}", sections)


def _completions_of(config: dict):
    """The input's completions, for the rating plots, when the input is still there."""
    if not Path(config["input"]).exists():
        return None
    try:
        return read_input(Path(config["input"]), config["options"].get("format", "auto"))
    except NotosError:
        return None


def _audit_sections(folder, stats, config):
    flags = pq.read_table(folder / "data.parquet")
    completions = _completions_of(config)
    flagged = {(p, i) for p, i in zip(flags.column("prompt_id").to_pylist(), flags.column("completion_index").to_pylist())} \
        if "completion_index" in flags.column_names else set()
    out = [page.counts_section("Flags", _counts(stats, "flag_counts", "counts", "by_flag"))]
    if completions is not None:
        out += [sections.critique_scatter_section(completions, flagged), sections.rating_section(completions)]
    out.append("<h2>Worst cases first</h2>" + page.table_html(flags.slice(0, 30).to_pylist()))
    return out


def _counts(stats: dict, *keys) -> dict:
    for key in keys:
        if isinstance(stats.get(key), dict):
            return stats[key]
    return {}


def _removal_sections(name):
    def sections(folder, stats, config):
        table = pq.read_table(folder / f"{name}.parquet")
        return [page.counts_section("Removed, by reason", stats.get("removed_by_reason", {})),
                f"<h2>{name.capitalize()}</h2>" + page.table_html(table.slice(0, 50).to_pylist())]
    return sections


def _binarize_sections(folder, stats, config):
    pairs = pq.read_table(folder / "data.parquet")
    completions = _completions_of(config)
    out = [sections.length_bias_section(pairs)]
    if completions is not None:
        out.append(sections.rating_section(completions))
    columns = [c for c in ("prompt_id", "source", "score_chosen", "score_rejected", "model_chosen", "model_rejected")
               if c in pairs.column_names]
    out.append("<h2>Pairs</h2>" + page.table_html(pairs.select(columns).slice(0, 30).to_pylist()))
    return out


def _compare_sections(folder, stats, config):
    strategies = stats.get("strategies", {})
    out = []
    for key in ("by_source", "by_model"):
        rows = stats.get(key)
        if isinstance(rows, dict):
            rows = [{"group": k, **v} if isinstance(v, dict) else {"group": k, "value": v} for k, v in rows.items()]
        if rows:
            out.append(f"<h2>Disagreement {key.replace('_', ' ')}</h2>" + page.table_html(rows))
    for name in strategies.values():
        path = folder / f"pairs_{name}.parquet"
        if path.exists():
            out.append(f"<h3>Strategy {name}</h3>" + sections.length_bias_section(pq.read_table(path)))
    return out


SECTIONS = {"audit": _audit_sections, "decontaminate": _removal_sections("removals"),
            "dedup": _removal_sections("clusters"), "binarize": _binarize_sections, "compare": _compare_sections}
