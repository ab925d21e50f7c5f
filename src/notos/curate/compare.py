"""Compare two binarizations of the same data: how often does the choice change?

    report = compare(binarize(c, "overall"), binarize(c, "mean"))
    report["chosen_differs"]        # Notus found about 0.5 between these two on UltraFeedback

Prompts are joined by prompt_id; only prompts paired under both strategies are compared (the
counts of prompts paired under one only are reported beside). A choice "differs" when the
completion_index differs. The shares are broken down by source and by the model of the chosen
response under A, and a few prompts whose chosen response changed are given as examples.
Everything returned is plain JSON (dicts, lists, numbers, strings; None for an empty share).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.errors import NotosError

KEYS = ("prompt_id", "index_chosen", "index_rejected", "score_chosen", "score_rejected", "model_chosen", "source")
UNKNOWN = "(unknown)"


def compare(pairs_a: pa.Table, pairs_b: pa.Table, *, examples: int = 10) -> dict:
    """Shares of prompts whose chosen / rejected / either response differs between A and B."""
    a, b = _one_pair_per_prompt(pairs_a, "A"), _one_pair_per_prompt(pairs_b, "B")
    joined = a.join(b, "prompt_id", join_type="inner", left_suffix="_a", right_suffix="_b", use_threads=False)
    # Keep A's order so the examples are stable and read in the input's order.
    joined = joined.sort_by([("_order_a", "ascending")])
    chosen = _differs(joined, "index_chosen")
    rejected = _differs(joined, "index_rejected")
    either = chosen | rejected
    flags = {"chosen_differs": chosen, "rejected_differs": rejected, "either_differs": either}
    shown = np.flatnonzero(chosen)[:examples]
    return {
        "strategy_a": _strategy(pairs_a), "strategy_b": _strategy(pairs_b),
        "prompts_a": a.num_rows, "prompts_b": b.num_rows, "prompts_both": joined.num_rows,
        "only_a": a.num_rows - joined.num_rows, "only_b": b.num_rows - joined.num_rows,
        **_shares(flags, np.ones(joined.num_rows, bool)),
        "by_source": _breakdown(flags, _labels(joined, "source_a")),
        "by_model": _breakdown(flags, _labels(joined, "model_chosen_a")),
        "examples": [_example(joined, int(i)) for i in shown],
    }


def _one_pair_per_prompt(pairs: pa.Table, name: str) -> pa.Table:
    missing = [k for k in KEYS if k not in pairs.column_names]
    if missing:
        raise NotosError(f"compare: pairs {name} have no column '{missing[0]}' (binarize's output is expected)")
    table = pairs.select(list(KEYS)).append_column("_order", pa.array(np.arange(pairs.num_rows)))
    ids = table.column("prompt_id")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise NotosError(f"compare: pairs {name} hold several pairs for one prompt (e.g. all-pairs); "
                         "compare strategies that give one pair per prompt")
    return table


def _differs(joined: pa.Table, name: str) -> np.ndarray:
    return pc.fill_null(pc.not_equal(joined.column(f"{name}_a"), joined.column(f"{name}_b")), True) \
        .to_numpy(zero_copy_only=False).astype(bool)


def _labels(joined: pa.Table, name: str) -> np.ndarray:
    return pc.fill_null(joined.column(name), UNKNOWN).to_numpy(zero_copy_only=False).astype(object)


def _shares(flags: dict, mask: np.ndarray) -> dict:
    n = int(mask.sum())
    return _entry(n, {key: int(values[mask].sum()) for key, values in flags.items()})


def _breakdown(flags: dict, labels: np.ndarray) -> dict:
    """Shares per label (counted with bincount, not a loop over rows), the largest groups first."""
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    sizes = np.bincount(codes, minlength=len(names))
    counts = {key: np.bincount(codes, weights=values, minlength=len(names)) for key, values in flags.items()}
    order = sorted(range(len(names)), key=lambda g: (-sizes[g], names[g]))
    return {str(names[g]): _entry(int(sizes[g]), {key: int(c[g]) for key, c in counts.items()}) for g in order}


def _entry(n: int, counts: dict) -> dict:
    out = {"n": n}
    for key, count in counts.items():
        out[key] = round(count / n, 6) if n else None
        out[f"n_{key}"] = count
    return out


def _example(joined: pa.Table, i: int) -> dict:
    def side(suffix):
        return {key: joined.column(f"{key}{suffix}")[i].as_py()
                for key in ("index_chosen", "index_rejected", "score_chosen", "score_rejected", "model_chosen")}

    return {"prompt_id": joined.column("prompt_id")[i].as_py(), "source": joined.column("source_a")[i].as_py(),
            "a": side("_a"), "b": side("_b")}


def _strategy(pairs: pa.Table) -> str | None:
    if "strategy" not in pairs.column_names or pairs.num_rows == 0:
        return None
    return pairs.column("strategy")[0].as_py()
