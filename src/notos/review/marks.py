"""Which completion is chosen / rejected, with a person's marks on top of the machine's rule.

    pairs = binarize_with_edits(completions, "runs/uf/review", strategy="mean")

The machine's pair comes from `notos.curate.binarize` (same strategies, same seeded draws); a
prompt a person marked keeps the marked completion(s), and the side left unmarked is the
machine's, unless that is the marked completion itself: then the other side is the
lowest-scored (for rejected) / highest-scored (for chosen) other completion.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.curate.binarize import binarize, binarize_stats, completion_scores
from notos.data.completions import Completions
from notos.data.edits import apply_edits
from notos.errors import NotosError

REVIEW_STRATEGIES = ("mean", "overall", "best-worst")


def slim(c: Completions) -> Completions:
    """The same completions with empty texts: what binarize needs to choose, not to write pairs."""
    table = c.table
    empty = pa.nulls(table.num_rows, pa.string())
    for name in ("prompt", "response", "critique") + tuple(f"rationale_{a}" for a in c.aspects):
        if name in table.column_names:
            table = table.set_column(table.schema.get_field_index(name), name, empty)
    return Completions(table, c.aspects)


def machine_pairs(c: Completions, strategy: str, seed: int) -> pa.Table:
    """binarize's pairs, or an empty table when nothing can pair (no scores at all)."""
    try:
        return binarize(c, strategy, seed=seed)
    except NotosError:
        if c.table.num_rows == 0 or np.isnan(completion_scores(c, _score(strategy))).all():
            return pa.table({"prompt_id": pa.array([], pa.string()), "index_chosen": pa.array([], pa.int32()),
                             "index_rejected": pa.array([], pa.int32())})
        raise


def pair_indexes(c: Completions, strategy: str, seed: int, forced: dict | None = None) -> dict:
    """prompt_id -> (chosen completion_index, rejected completion_index); None where no pair."""
    pairs = machine_pairs(c, strategy, seed)
    found = {}
    for pid, chosen, rejected in zip(pairs.column("prompt_id").to_pylist(), pairs.column("index_chosen").to_pylist(),
                                     pairs.column("index_rejected").to_pylist()):
        found.setdefault(pid, (chosen, rejected))  # all-pairs: the first pair stands for the prompt
    if forced:
        scores = _scores_by_prompt(c, strategy, set(forced))
        for pid, marks in forced.items():
            found[pid] = resolve(found.get(pid), marks, scores.get(pid, {}))
    return found


def resolve(machine: tuple | None, marks: dict, scores: dict) -> tuple:
    """The (chosen, rejected) of a marked prompt; `scores`: completion_index -> score (NaN: none)."""
    chosen, rejected = marks.get("chosen"), marks.get("rejected")
    machine_chosen, machine_rejected = machine or (None, None)
    others = lambda skip: [k for k in scores if k != skip]
    ranked = lambda keys: sorted(keys, key=lambda k: (np.nan_to_num(scores[k], nan=-np.inf), -k))
    if chosen is None:
        chosen = machine_chosen if machine_chosen not in (None, rejected) else (ranked(others(rejected)) or [None])[-1]
    if rejected is None:
        rejected = machine_rejected if machine_rejected not in (None, chosen) else (ranked(others(chosen)) or [None])[0]
    return chosen, rejected


def binarize_with_edits(c: Completions, edits, strategy: str = "mean", seed: int = 0) -> tuple[pa.Table, dict]:
    """(pairs, counts): binarize after a person's edits (ratings changed, prompts discarded, marks
    forced). The pairs have binarize's columns; stats gain `edits_applied`."""
    edited, forced, counts = apply_edits(c, edits)
    pairs = machine_pairs(edited, strategy, seed)
    if forced:
        indexes = pair_indexes(edited, strategy, seed, forced)
        pairs = _force(pairs, edited, {pid: indexes[pid] for pid in forced}, strategy)
    return pairs, counts


def _force(pairs: pa.Table, c: Completions, marked: dict, strategy: str) -> pa.Table:
    scores = completion_scores(c, _score(strategy))
    table = c.table
    row_of = {(p, i): r for r, (p, i) in enumerate(zip(table.column("prompt_id").to_pylist(),
                                                        table.column("completion_index").to_pylist()))}
    rows = []
    for pid, (chosen, rejected) in marked.items():
        if chosen is None or rejected is None or chosen == rejected:
            continue
        rc, rr = table.slice(row_of[(pid, chosen)], 1).to_pylist()[0], table.slice(row_of[(pid, rejected)], 1).to_pylist()[0]
        rows.append({
            "prompt_id": pid, "prompt": [{"role": "user", "content": rc["prompt"]}],
            "chosen": [{"role": "assistant", "content": rc["response"]}],
            "rejected": [{"role": "assistant", "content": rr["response"]}],
            "score_chosen": _nan_none(scores[row_of[(pid, chosen)]]), "score_rejected": _nan_none(scores[row_of[(pid, rejected)]]),
            "model_chosen": rc["model"], "model_rejected": rr["model"], "index_chosen": chosen, "index_rejected": rejected,
            "source": rc["source"], "strategy": "human",
        })
    keep = pc.invert(pc.is_in(pairs.column("prompt_id"), value_set=pa.array(list(marked), pa.string())))
    kept = pairs.filter(keep)
    if not rows or "prompt" not in pairs.column_names:
        return kept
    extra = pa.Table.from_pylist(rows, schema=pairs.schema.remove_metadata())
    out = pa.concat_tables([kept.replace_schema_metadata(None), extra])
    stats = binarize_stats(pairs)
    stats["forced"] = len(rows)
    return out.replace_schema_metadata(pairs.schema.metadata | {b"notos.binarize": json.dumps(stats).encode()})


def _scores_by_prompt(c: Completions, strategy: str, wanted: set) -> dict:
    scores = completion_scores(c, _score(strategy))
    out: dict = {}
    for pid, k, s in zip(c.table.column("prompt_id").to_pylist(), c.table.column("completion_index").to_pylist(), scores):
        if pid in wanted:
            out.setdefault(pid, {})[k] = s
    return out


def _score(strategy: str) -> str:
    return "overall" if strategy == "overall" else "mean"


def _nan_none(value: float):
    return None if np.isnan(value) else float(value)
