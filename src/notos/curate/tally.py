"""What the report draws, counted batch by batch while curation runs, so report.html never
reads the input again.

    tally = Tally(aspects)
    tally.add_completions(completions, flagged_rows)     # per batch
    tally.add_examples(completions, flags)               # per batch, after the audit
    tally.add_pairs("mean", pairs)                       # per batch, per strategy
    stats["report"] = tally.to_json()                    # small: counts, a few examples

Everything kept is a count, a histogram or a handful of example rows: a few KB whatever the
size of the data. `merge_counts` adds up the per-batch summaries of audit and binarize.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.data.completions import (
    Completions,
    na_column,
    rating_column,
    rationale_column,
)

RATING_LABELS = ("1", "2", "3", "4", "5", "N/A", "missing")
MEAN_BINS = np.linspace(1.0, 5.0, 17)  # aspect mean in quarter steps
OVERALL_BINS = np.arange(1, 11)  # critique overall_score 1..10, rounded
LENGTH_BINS = np.concatenate([np.arange(0, 4000, 100), [4000, 6000, 10000, 1 << 30]])
EXAMPLES_PER_FLAG = 5
EXCERPT = 700  # characters of a prompt / response / critique an example keeps
NOT_SUMMED = ("min_margin", "seed")


class Tally:
    def __init__(self, aspects):
        self.aspects = list(aspects)
        self.ratings = {a: np.zeros(len(RATING_LABELS), np.int64) for a in self.aspects}
        self.models: dict[str, dict] = {}
        self.heat = np.zeros((len(OVERALL_BINS), len(MEAN_BINS)), np.int64)
        self.heat_flagged = np.zeros_like(self.heat)
        self.examples: dict[str, list[dict]] = {}
        self.lengths: dict[str, list[np.ndarray]] = {}

    # --- completions ---------------------------------------------------------------------------

    def add_completions(self, c: Completions, flagged: np.ndarray | None = None) -> None:
        table = c.table
        if not self.aspects and c.aspects:
            self.__init__(c.aspects)
        for aspect in self.aspects:
            values = _floats(table.column(rating_column(aspect)))
            na = _bools(table.column(na_column(aspect)))
            rounded = np.round(values[~np.isnan(values)]).astype(int)
            counts = np.bincount(np.clip(rounded, 1, 5) - 1, minlength=5)[:5]
            self.ratings[aspect] += np.concatenate([counts, [na.sum(), (np.isnan(values) & ~na).sum()]])
        mean = aspect_means(c)
        overall = _floats(table.column("overall_score"))
        both = ~np.isnan(mean) & ~np.isnan(overall)
        rows = np.clip(np.round(overall[both]).astype(int), 1, 10) - 1
        columns = np.clip(np.round((mean[both] - 1) * 4).astype(int), 0, len(MEAN_BINS) - 1)
        np.add.at(self.heat, (rows, columns), 1)
        if flagged is not None and flagged.any():
            hit = flagged[both]
            np.add.at(self.heat_flagged, (rows[hit], columns[hit]), 1)
        self._add_models(table.column("model"), mean, overall)

    def _add_models(self, models, mean, overall) -> None:
        encoded = pc.dictionary_encode(pc.fill_null(_plain(models), "(unknown)"))
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        names = encoded.dictionary.to_pylist()
        known = ~np.isnan(mean)
        steps = np.zeros(len(mean), np.int64)  # slot 0: no rating at all, then 1..5
        steps[known] = np.clip(np.round(mean[known]).astype(np.int64), 1, 5)
        for i, name in enumerate(names):
            entry = self.models.setdefault(name, {"completions": 0, "sum_mean": 0.0, "n_mean": 0, "sum_overall": 0.0,
                                                  "n_overall": 0, "mean_rounded": [0] * 6})
            mine = codes == i
            m, o = mean[mine], overall[mine]
            entry["completions"] += int(mine.sum())
            entry["sum_mean"] += float(np.nansum(m))
            entry["n_mean"] += int((~np.isnan(m)).sum())
            entry["sum_overall"] += float(np.nansum(o))
            entry["n_overall"] += int((~np.isnan(o)).sum())
            hist = np.bincount(steps[mine], minlength=6)
            entry["mean_rounded"] = [a + int(b) for a, b in zip(entry["mean_rounded"], hist)]

    # --- audit examples ------------------------------------------------------------------------

    def add_examples(self, c: Completions, flags: pa.Table, limit: int = EXAMPLES_PER_FLAG) -> None:
        """Keep the worst `limit` completions of each flag (flags: audit's table, worst first)."""
        if flags.num_rows == 0:
            return
        names = pc.list_flatten(flags.column("flags"))
        owner = pc.list_parent_indices(flags.column("flags")).to_numpy(zero_copy_only=False)
        picked = {}
        for flag in pc.unique(names).to_pylist():
            rows = np.unique(owner[pc.equal(names, flag).to_numpy(zero_copy_only=False)])[:limit]
            picked[flag] = rows
        wanted = np.unique(np.concatenate(list(picked.values())))
        subset = flags.take(pa.array(wanted))
        where = rows_of(c.table, subset)
        texts = c.table.take(pa.array(where))
        for flag, rows in picked.items():
            keep = self.examples.setdefault(flag, [])
            for r in rows:
                k = int(np.searchsorted(wanted, r))
                keep.append(_example(flags, int(r), texts, k, self.aspects))
            keep.sort(key=lambda e: -e["severity"])
            del keep[limit:]

    # --- pairs ---------------------------------------------------------------------------------

    def add_pairs(self, name: str, pairs: pa.Table) -> None:
        if pairs.num_rows == 0:
            return
        chosen = _content_lengths(pairs.column("chosen"))
        rejected = _content_lengths(pairs.column("rejected"))
        self.lengths.setdefault(name, []).append(np.stack([chosen, rejected]))

    # --- out -----------------------------------------------------------------------------------

    def to_json(self) -> dict:
        lengths = {}
        for name, parts in self.lengths.items():
            both = np.concatenate(parts, axis=1)
            lengths[name] = {
                "pairs": int(both.shape[1]), "chosen_longer": round(float(np.mean(both[0] > both[1])), 4),
                "median_chosen": float(np.median(both[0])), "median_rejected": float(np.median(both[1])),
                "bins": LENGTH_BINS.tolist(), "chosen": np.histogram(both[0], LENGTH_BINS)[0].tolist(),
                "rejected": np.histogram(both[1], LENGTH_BINS)[0].tolist(),
            }
        models = []
        for name, m in self.models.items():
            models.append({"model": name, "completions": m["completions"],
                           "mean_rating": round(m["sum_mean"] / m["n_mean"], 3) if m["n_mean"] else None,
                           "mean_overall_score": round(m["sum_overall"] / m["n_overall"], 3) if m["n_overall"] else None,
                           "rounded_mean_counts": m["mean_rounded"]})
        models.sort(key=lambda r: -(r["mean_rating"] or 0))
        return {"aspects": self.aspects, "rating_labels": list(RATING_LABELS),
                "ratings": {a: v.tolist() for a, v in self.ratings.items()}, "models": models,
                "heat": {"overall": OVERALL_BINS.tolist(), "mean": MEAN_BINS.tolist(), "all": self.heat.tolist(),
                         "flagged": self.heat_flagged.tolist()},
                "examples": self.examples, "lengths": lengths}


def merge_counts(total: dict | None, part: dict) -> dict:
    """total + part, leaf by leaf: numbers add up (but min_margin, seed), anything else is kept."""
    if total is None:
        return {k: (merge_counts(None, v) if isinstance(v, dict) else v) for k, v in part.items()}
    for key, value in part.items():
        if key not in total:
            total[key] = merge_counts(None, value) if isinstance(value, dict) else value
        elif isinstance(value, dict) and isinstance(total[key], dict):
            merge_counts(total[key], value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in NOT_SUMMED:
            total[key] += value
    return total


def fix_shares(summary: dict) -> dict:
    """Recompute every share_flagged from its summed flagged / completions, at every level."""
    if "share_flagged" in summary and summary.get("completions"):
        summary["share_flagged"] = round(summary["flagged"] / summary["completions"], 4)
    for value in summary.values():
        if isinstance(value, dict):
            fix_shares(value)
    return summary


def aspect_means(c: Completions) -> np.ndarray:
    """Mean of the aspect ratings per completion, N/A and missing left out (NaN when none)."""
    if not c.aspects:
        return np.full(c.table.num_rows, np.nan)
    matrix = np.column_stack([_floats(c.table.column(rating_column(a))) for a in c.aspects])
    counts = np.sum(~np.isnan(matrix), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.nansum(matrix, axis=1) / np.maximum(counts, 1), np.nan)


def _example(flags: pa.Table, r: int, texts: pa.Table, k: int, aspects) -> dict:
    def text(name):
        value = texts.column(name)[k].as_py() if name in texts.column_names else None
        return value if value is None or len(value) <= EXCERPT else value[:EXCERPT - 1] + "…"

    return {
        "prompt_id": flags.column("prompt_id")[r].as_py(), "completion_index": flags.column("completion_index")[r].as_py(),
        "model": flags.column("model")[r].as_py(), "severity": flags.column("severity")[r].as_py(),
        "flags": flags.column("flags")[r].as_py(), "reasons": flags.column("reasons")[r].as_py(),
        "overall_score": flags.column("overall_score")[r].as_py(), "prompt": text("prompt"),
        "response": text("response"), "critique": text("critique"),
        "aspects": [{"aspect": a, "rating": texts.column(rating_column(a))[k].as_py(),
                     "na": texts.column(na_column(a))[k].as_py(), "rationale": text(rationale_column(a))}
                    for a in aspects],
    }


def rows_of(table: pa.Table, subset: pa.Table) -> np.ndarray:
    """Row of `table` holding each (prompt_id, completion_index) of `subset`."""
    def keys(t):
        return pc.binary_join_element_wise(pc.cast(t.column("prompt_id"), pa.string()),
                                           pc.cast(t.column("completion_index"), pa.string()), "\x1f")
    return pc.index_in(keys(subset), value_set=_plain(keys(table))).to_numpy(zero_copy_only=False).astype(np.int64)


def _content_lengths(messages) -> np.ndarray:
    """Characters of the last message of each conversation (the response)."""
    messages = _plain(messages)
    lengths = pc.fill_null(pc.list_value_length(messages), 0).to_numpy(zero_copy_only=False)
    last = np.cumsum(lengths) - 1
    content = pc.struct_field(pc.list_flatten(messages), "content")
    chars = pc.fill_null(pc.utf8_length(content), 0).to_numpy(zero_copy_only=False)
    return np.where(lengths > 0, chars[np.maximum(last, 0)] if len(chars) else 0, 0)


def _plain(values):
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _floats(values) -> np.ndarray:
    return pc.cast(_plain(values), pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _bools(values) -> np.ndarray:
    return np.asarray(pc.fill_null(_plain(values), False).to_numpy(zero_copy_only=False), bool)
