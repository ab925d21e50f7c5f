"""Turn rated completions into (prompt, chosen, rejected) pairs, TRL's conversational format.

    pairs = binarize(completions, "mean", seed=0)        # Notus
    binarize_stats(pairs)  # {"prompts_paired": ..., "dropped": {"fewer_than_2_scores": ..., ...}}

Strategies (each completion's score: `overall_score` for "overall", else the mean of its aspect
ratings with N/A and missing left out; `score="overall"|"mean"` overrides):

    overall     Zephyr's UltraFeedback binarization: chosen = the best overall_score, rejected =
                a random one of the others with a STRICTLY lower score (equal scores never pair)
    mean        Notus's: the same rule on the mean of the aspect ratings
    best-worst  the best against the worst (no pair when they are equal)
    all-pairs   every (i, j) with score_i - score_j >= min_margin and > 0

When several completions tie for the best (or, in best-worst, the worst) one of them is drawn at
random. Every random draw is seeded by (seed, prompt_id) and completions are ordered by
completion_index, so the pairs do not depend on the input's row order. `min_margin` drops a
pair whose score gap is below it; the single-pair strategies draw the rejected first and then
drop the pair (so the margin filters pairs, it does not bias which response is rejected).
Completions without a score are ignored; a prompt with fewer than two scored completions, all
tied, or below the margin gives no pair and is counted under that reason. The counts travel in
the pairs table's schema metadata (kept in its Parquet file); read them with `binarize_stats`.

`forced` (what a reviewer decided, `notos.data.edits.apply_edits`'s second value) is
{prompt_id: {"chosen": completion_index | None, "rejected": completion_index | None}}: a forced
side wins over the strategy for that prompt. A forced chosen counts as the best completion and a
forced rejected as the worst, so the strategy picks the other side among the remaining
completions (its usual rule: a random one scoring lower, or the worst); `min_margin` does not
drop a pair a reviewer decided. The scores written are the real ones.

The work is numpy over a padded [n_prompts, max_completions] score matrix: no Python loop over
prompts.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.data.completions import Completions, rating_column
from notos.errors import DataError, NotosError

STRATEGIES = ("overall", "mean", "best-worst", "all-pairs")
SCORES = ("overall", "mean")
STATS_KEY = b"notos.binarize"
_GRID_CELLS = 20_000_000  # all-pairs compares [prompts, k, k] in blocks of about this many cells


def binarize(c: Completions, strategy: str, *, min_margin: float = 0.0, seed: int = 0, aspects=None,
             score: str | None = None, forced: dict | None = None) -> pa.Table:
    """Pairs in TRL's conversational preference format plus provenance (see the module doc)."""
    if strategy not in STRATEGIES:
        raise NotosError(f"unknown binarize strategy '{strategy}' (choose from {', '.join(STRATEGIES)})")
    score = score or ("overall" if strategy == "overall" else "mean")
    if min_margin is None or not min_margin >= 0:
        raise NotosError(f"binarize: min_margin must be >= 0 (got {min_margin})")
    scores = completion_scores(c, score, aspects)
    if c.table.num_rows and np.isnan(scores).all():
        raise DataError(f"binarize: no completion has a{'n overall_score' if score == 'overall' else ' rating'} "
                        f"(strategy '{strategy}'); try another strategy")
    grid = _grid(c.table, scores)
    draws = _uniforms(grid["ids"], seed, streams=2)
    ranked, forced_rejected = _apply_forced(grid, c.table, forced or {})
    if strategy == "all-pairs":
        p, ci, ri, reasons = _all_pairs(ranked, min_margin)
    else:
        p, ci, ri, reasons = _one_pair(ranked, draws, min_margin, worst=strategy == "best-worst",
                                       forced_rejected=forced_rejected)
    rows_c, rows_r = grid["rows"][p, ci], grid["rows"][p, ri]
    stats = {
        "strategy": strategy, "score": score, "aspects": [a.replace("-", "_") for a in (aspects or c.aspects)] if score == "mean" else [],
        "min_margin": float(min_margin), "seed": seed, "prompts": len(grid["ids"]), "completions": c.table.num_rows,
        "completions_without_score": int(np.isnan(scores).sum()), "prompts_paired": int((reasons == _PAIRED).sum()),
        "pairs": len(p), "forced_prompts": int((np.abs(np.nan_to_num(ranked)) >= _FORCED).any(1).sum()),
        "dropped": {name: int((reasons == code).sum()) for code, name in _DROP_REASONS.items()},
    }
    return _pairs_table(c.table, rows_c, rows_r, scores, strategy, stats)


def binarize_stats(pairs: pa.Table) -> dict:
    """The counts `binarize` stored in the pairs' schema metadata."""
    meta = pairs.schema.metadata or {}
    if STATS_KEY not in meta:
        raise NotosError("these pairs carry no binarize stats (not written by notos.curate.binarize)")
    return json.loads(meta[STATS_KEY])


def completion_scores(c: Completions, score: str = "mean", aspects=None) -> np.ndarray:
    """One float per completion (NaN: no score): overall_score, or the mean of the aspect ratings
    (N/A and missing are null in the table and left out; all of them null -> NaN)."""
    if score not in SCORES:
        raise NotosError(f"binarize: unknown score '{score}' (choose from {', '.join(SCORES)})")
    table = c.table
    if score == "overall":
        return _floats(table.column("overall_score"))
    aspects = [a.replace("-", "_") for a in (aspects or c.aspects)]  # instruction-following too
    missing = [a for a in aspects if rating_column(a) not in table.column_names]
    if missing or not aspects:
        raise NotosError(f"binarize: no aspect '{missing[0]}' in the data (aspects: {', '.join(c.aspects) or 'none'})"
                         if missing else "binarize: the data has no aspect ratings to average")
    ratings = np.column_stack([_floats(table.column(rating_column(a))) for a in aspects])  # [n, aspects]
    counts = (~np.isnan(ratings)).sum(1)
    sums = np.where(np.isnan(ratings), 0.0, ratings).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


# --- the score grid ------------------------------------------------------------------------------

def _grid(table: pa.Table, scores: np.ndarray) -> dict:
    """Prompts in order of first appearance; scores [P, K] (NaN padded) and rows [P, K] (the
    table row of each cell, -1 padded), columns ordered by completion_index."""
    encoded = pc.dictionary_encode(_combined(table.column("prompt_id")))
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    index = _floats(table.column("completion_index"))
    order = np.lexsort((np.arange(len(codes)), index, codes))
    sizes = np.bincount(codes, minlength=len(encoded.dictionary))
    starts = np.cumsum(sizes) - sizes
    sorted_codes = codes[order]
    column = np.arange(len(order)) - starts[sorted_codes]
    width = int(sizes.max()) if len(sizes) else 0
    grid_scores = np.full((len(sizes), width), np.nan)
    grid_rows = np.full((len(sizes), width), -1, dtype=np.int64)
    grid_scores[sorted_codes, column] = scores[order]
    grid_rows[sorted_codes, column] = order
    return {"ids": encoded.dictionary, "scores": grid_scores, "rows": grid_rows}


_FORCED = 1e9  # the rank of a forced chosen (and minus it, of a forced rejected): beyond any score


def _apply_forced(grid: dict, table: pa.Table, forced: dict):
    """(the score grid with forced cells set to +-_FORCED, each prompt's forced rejected column or -1)."""
    ranked = grid["scores"]
    forced_rejected = np.full(len(ranked), -1, np.int64)
    if not forced:
        return ranked, forced_rejected
    ranked = ranked.copy()
    position = {pid: p for p, pid in enumerate(grid["ids"].to_pylist())}
    index = _floats(table.column("completion_index"))
    for pid, sides in forced.items():
        p = position.get(str(pid))
        if p is None:
            continue  # a prompt the data no longer holds (removed by curation): nothing to force
        cells = grid["rows"][p]
        columns = {int(index[row]): k for k, row in enumerate(cells) if row >= 0}
        chosen, rejected = sides.get("chosen"), sides.get("rejected")
        if chosen is not None and chosen == rejected:
            raise NotosError(f"binarize: prompt {pid}: completion {chosen} is forced both chosen and rejected")
        for side, sign in ((chosen, 1.0), (rejected, -1.0)):
            if side is None:
                continue
            if int(side) not in columns:
                raise DataError(f"binarize: prompt {pid} has no completion {side} to force "
                                f"(completions: {', '.join(map(str, sorted(columns)))})")
            ranked[p, columns[int(side)]] = sign * _FORCED
        if rejected is not None:
            forced_rejected[p] = columns[int(rejected)]
    return ranked, forced_rejected


_PAIRED, _FEWER, _TIED, _MARGIN = 0, 1, 2, 3
_DROP_REASONS = {_FEWER: "fewer_than_2_scores", _TIED: "all_tied", _MARGIN: "below_margin"}


def _one_pair(scores, draws, min_margin, worst: bool, forced_rejected=None):
    """(prompt, chosen column, rejected column) for prompts that pair, and a reason per prompt."""
    valid = ~np.isnan(scores)
    n_scored = valid.sum(1)
    best = np.where(valid, scores, -np.inf).max(1, initial=-np.inf)
    chosen = _pick(valid & (scores == best[:, None]), draws[0])
    if worst:
        low = np.where(valid, scores, np.inf).min(1, initial=np.inf)
        candidates = valid & (scores == low[:, None]) & (low < best)[:, None]
    else:
        candidates = valid & (scores < best[:, None])
    rejected = _pick(candidates, draws[1])
    if forced_rejected is not None:
        rejected = np.where(forced_rejected >= 0, forced_rejected, rejected)
    gap = best - scores[np.arange(len(scores)), rejected]
    reasons = np.select([n_scored < 2, ~candidates.any(1), ~(gap >= min_margin)], [_FEWER, _TIED, _MARGIN], _PAIRED)
    p = np.flatnonzero(reasons == _PAIRED)
    return p, chosen[p], rejected[p], reasons


def _pick(mask, u):
    """Per row, the column of a uniformly drawn True cell of mask (u in [0, 1)); 0 where none."""
    counts = mask.sum(1)
    k = np.minimum((u * counts).astype(np.int64), np.maximum(counts - 1, 0))
    return (np.cumsum(mask, 1) > k[:, None]).argmax(1) if mask.shape[1] else np.zeros(len(mask), np.int64)


def _all_pairs(scores, min_margin):
    """Every (i, j) in a prompt with score_i - score_j > 0 and >= min_margin, in blocks of prompts."""
    n, width = scores.shape
    step = max(1, _GRID_CELLS // max(1, width * width))
    found, reasons = [], np.empty(n, np.int64)
    for start in range(0, n, step):
        block = scores[start:start + step]
        gap = block[:, :, None] - block[:, None, :]  # [b, chosen, rejected], NaN where either is unscored
        with np.errstate(invalid="ignore"):
            differ = gap > 0
            keep = differ & (gap >= min_margin)
        p, i, j = np.nonzero(keep)
        found.append((p + start, i, j))
        n_scored = (~np.isnan(block)).sum(1)
        reasons[start:start + step] = np.select(
            [n_scored < 2, ~differ.any((1, 2)), ~keep.any((1, 2))], [_FEWER, _TIED, _MARGIN], _PAIRED)
    if not found:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, reasons
    p, i, j = (np.concatenate(parts) for parts in zip(*found))
    return p, i, j, reasons


def _uniforms(ids: pa.Array, seed: int, streams: int) -> np.ndarray:
    """[streams, len(ids)] numbers in [0, 1) that depend only on (seed, id, stream): a hash of each
    id's UTF-8 bytes computed column-wise (each byte times a per-position mix, summed per id)."""
    ids = pc.cast(ids, pa.large_string())
    if len(ids) == 0:
        return np.zeros((streams, 0))
    _, offsets_buf, data_buf = ids.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[ids.offset:ids.offset + len(ids) + 1]
    data = np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[-1]] if data_buf is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    starts = offsets[:-1] - offsets[0]
    owner = np.repeat(np.arange(len(ids)), lengths)
    position = np.arange(len(data), dtype=np.uint64) - starts[owner].astype(np.uint64)
    contributions = (data.astype(np.uint64) + np.uint64(1)) * _mix(position)
    hashed = np.zeros(len(ids), np.uint64)
    nonempty = lengths > 0
    if nonempty.any():
        hashed[nonempty] = np.add.reduceat(contributions, starts[nonempty])
    key = _mix(hashed ^ _mix(lengths.astype(np.uint64)))
    seeds = _mix(np.arange(streams, dtype=np.uint64) + _mix(np.array([seed % 2**64], np.uint64)))
    return (_mix(key[None, :] ^ seeds[:, None]) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise on uint64 (wrapping arithmetic)."""
    x = np.asarray(x, np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# --- output --------------------------------------------------------------------------------------

def _pairs_table(table, rows_c, rows_r, scores, strategy, stats) -> pa.Table:
    chosen, rejected = pa.array(rows_c, pa.int64()), pa.array(rows_r, pa.int64())
    n = len(rows_c)

    def take(name, rows):
        return _combined(table.column(name).take(rows))

    columns = {
        "prompt_id": take("prompt_id", chosen),
        "prompt": _messages("user", take("prompt", chosen)),
        "chosen": _messages("assistant", take("response", chosen)),
        "rejected": _messages("assistant", take("response", rejected)),
        "score_chosen": pa.array(scores[rows_c], pa.float64()),
        "score_rejected": pa.array(scores[rows_r], pa.float64()),
        "model_chosen": take("model", chosen), "model_rejected": take("model", rejected),
        "index_chosen": take("completion_index", chosen), "index_rejected": take("completion_index", rejected),
        "source": take("source", chosen), "strategy": pa.repeat(pa.scalar(strategy), n),
    }
    return pa.table(columns).replace_schema_metadata({STATS_KEY: json.dumps(stats)})


def _messages(role: str, content: pa.Array) -> pa.Array:
    """One single-message conversation per row: [{"role": role, "content": content}]."""
    n = len(content)
    message = pa.StructArray.from_arrays([pa.repeat(pa.scalar(role), n), content], names=["role", "content"])
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), message)


def _floats(values) -> np.ndarray:
    return pc.cast(_combined(values), pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _combined(values):
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
