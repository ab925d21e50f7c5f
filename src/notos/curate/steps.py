"""Curation as pipeline steps: the same functions as `notos curate`, over a pipeline's rows.

    - {name: clean, type: decontaminate, after: records, benchmark: [mt_bench/question.jsonl]}
    - {name: unique, type: dedup, after: clean}
    - {name: flags, type: audit, after: unique}
    - {name: pairs, type: binarize, after: flags, strategy: mean}

The rows are UltraFeedback records (the `ultrafeedback_records` step's output), the generic form
or a completions table; each step sees the whole dataset at once (a global step). decontaminate
and dedup drop rows and log how many and why; audit adds `audit_flags`, `audit_reasons` (one list
per completion) and `audit_severity` (the worst); binarize turns each record into its pair(s) in
TRL's format.
"""

from __future__ import annotations

import logging
from collections import Counter

import pyarrow as pa

from notos.errors import GraphError

log = logging.getLogger("notos")


def _global(name: str, fn, options: dict, type_name: str, outputs=(), columns_after=None, **settings):
    from notos.pipeline.step import Step

    return Step(name=name, kind="global", fn=fn, per_row=False, options=options, type_name=type_name,
                outputs=tuple(outputs), columns_after=columns_after, **settings)


def _completions(rows: list[dict], format: str):
    from notos.data.records import normalize

    raw = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "_error"} for r in rows])
    return raw, normalize(raw, format=format, origin="pipeline rows")


def _kept_rows(rows: list[dict], raw: pa.Table, kept) -> list[dict]:
    from notos.data.records import prompt_ids

    keep = set(kept.table.column("prompt_id").to_pylist())
    return [row for row, pid in zip(rows, prompt_ids(raw).to_pylist()) if pid in keep]


# --- decontaminate / dedup ---------------------------------------------------------------------

def decontaminate(benchmark, ngram: int = 13, threshold: float = 0.0, drop_sources=("truthful_qa",),
                  format: str = "auto", *, name: str = "decontaminate", **settings):
    paths = [benchmark] if isinstance(benchmark, str) else list(benchmark or [])
    if not paths:
        raise GraphError(f"step '{name}': option 'benchmark' needs at least one benchmark prompt file")
    options = {"benchmark": paths, "ngram": ngram, "threshold": threshold, "drop_sources": list(drop_sources),
               "format": format}
    return _global(name, decontaminate_rows, options, "decontaminate", **settings)


def decontaminate_rows(rows, *, benchmark, ngram, threshold, drop_sources, format):
    from notos.curate.decontaminate import decontaminate as run

    if not rows:
        return rows
    raw, completions = _completions(rows, format)
    kept, removals = run(completions, benchmark, ngram=ngram, threshold=threshold, sources_to_drop=tuple(drop_sources))
    _log_removed("decontaminate", len(rows), removals.column("reason").to_pylist())
    return _kept_rows(rows, raw, kept)


def dedup(threshold: float = 0.6, ngram: int = 2, num_perm: int = 128, seed: int = 1, format: str = "auto", *,
          name: str = "dedup", **settings):
    options = {"threshold": threshold, "ngram": ngram, "num_perm": num_perm, "seed": seed, "format": format}
    return _global(name, dedup_rows, options, "dedup", **settings)


def dedup_rows(rows, *, threshold, ngram, num_perm, seed, format):
    from notos.curate.dedup import deduplicate

    if not rows:
        return rows
    raw, completions = _completions(rows, format)
    kept, clusters = deduplicate(completions, threshold=threshold, ngram=ngram, num_perm=num_perm, seed=seed)
    dropped = [r["reason"] for r in clusters.to_pylist() if not r["kept"]]
    _log_removed("dedup", len(rows), dropped)
    return _kept_rows(rows, raw, kept)


def _log_removed(step: str, total: int, reasons: list[str]) -> None:
    if reasons:
        why = ", ".join(f"{n} {reason}" for reason, n in Counter(reasons).most_common())
        log.info("%s: removed %d of %d prompts (%s)", step, len(reasons), total, why)


# --- audit -------------------------------------------------------------------------------------

AUDIT_COLUMNS = ("audit_flags", "audit_reasons", "audit_severity")


def audit(max_gap: float = 0.5, rationale_check: str = "lexicon", format: str = "auto", critique_rule: str = "gap", *,
          name: str = "audit", **settings):
    options = {"max_gap": max_gap, "rationale_check": rationale_check, "format": format, "critique_rule": critique_rule}
    return _global(name, audit_rows, options, "audit", outputs=AUDIT_COLUMNS,
                   columns_after=lambda before: list(before) + [c for c in AUDIT_COLUMNS if c not in before], **settings)


def audit_rows(rows, *, max_gap, rationale_check, format, critique_rule="gap"):
    from notos.curate.audit import audit as run
    from notos.data.records import prompt_ids

    if not rows:
        return rows
    raw, completions = _completions(rows, format)
    flags, _ = run(completions, max_gap=max_gap, rationale_check=rationale_check, critique_rule=critique_rule,
                   all_rows=True)
    per_prompt: dict[str, dict] = {}
    for finding in flags.to_pylist():
        entry = per_prompt.setdefault(finding["prompt_id"], {})
        entry[finding["completion_index"]] = finding
    out = []
    for row, pid in zip(rows, prompt_ids(raw).to_pylist()):
        found = per_prompt.get(pid, {})
        slots = range(max(found) + 1) if found else range(0)
        out.append({**row, "audit_flags": [found.get(k, {}).get("flags") or [] for k in slots],
                    "audit_reasons": [found.get(k, {}).get("reasons") or [] for k in slots],
                    "audit_severity": max((f["severity"] for f in found.values()), default=0.0)})
    return out


# --- binarize ----------------------------------------------------------------------------------

PAIR_COLUMNS = ("prompt_id", "prompt", "chosen", "rejected", "score_chosen", "score_rejected", "model_chosen",
                "model_rejected", "index_chosen", "index_rejected", "source", "strategy")


def binarize(strategy: str = "mean", min_margin: float = 0.0, seed: int = 0, format: str = "auto", *,
             name: str = "binarize", **settings):
    from notos.curate.binarize import STRATEGIES

    if strategy not in STRATEGIES:
        raise GraphError(f"step '{name}': option 'strategy' must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    options = {"strategy": strategy, "min_margin": min_margin, "seed": seed, "format": format}
    return _global(name, binarize_rows, options, "binarize", outputs=PAIR_COLUMNS,
                   columns_after=lambda before: list(PAIR_COLUMNS), **settings)


def binarize_rows(rows, *, strategy, min_margin, seed, format):
    from notos.curate.binarize import binarize as run
    from notos.curate.binarize import binarize_stats

    if not rows:
        return rows
    _, completions = _completions(rows, format)
    pairs = run(completions, strategy, min_margin=min_margin, seed=seed)
    stats = binarize_stats(pairs)
    log.info("binarize (%s): %d pairs from %d prompts; dropped %s", strategy, pairs.num_rows, len(rows),
             ", ".join(f"{k} {v}" for k, v in (stats.get("dropped") or {}).items() if v) or "none")
    seen: Counter = Counter()
    out = []
    for pair in pairs.to_pylist():
        n = seen[pair["prompt_id"]]
        seen[pair["prompt_id"]] += 1
        # One pair per prompt keeps the prompt's id; all-pairs numbers them as a step's children.
        row_id = pair["prompt_id"] if strategy != "all-pairs" else f"{pair['prompt_id']}.{n}"
        out.append({"row_id": row_id, **pair})
    return out
