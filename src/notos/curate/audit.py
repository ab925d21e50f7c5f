"""Find the completions whose judgments disagree with themselves: the Notus lesson as a check.

    flags, summary = audit(completions)                     # worst first
    flags, summary = audit(completions, max_gap=0.6, rationale_check="none")

Notus exists because a human sorting UltraFeedback by the chosen response's score found critique
overall_scores of 10 on answers whose own aspect ratings and rationales tore them apart. The
audit flags, per completion, each with a reason a human can read:

    critique_disagrees            the critique's overall_score (1-10) and the mean of the aspect
                                  ratings (1-5, N/A and missing left out), both rescaled to 0-1,
                                  differ by >= max_gap; or, whatever the gap, overall >=
                                  high_overall with mean <= low_mean (the classic case).
                                  critique_rule="classic" keeps only the latter, "none" neither.
    rating_contradicts_rationale  an aspect rated >= high_rating whose rationale reads negative,
                                  or <= low_rating whose rationale reads positive (the lexicon in
                                  notos.curate.lexicon; rationale_check="none" skips it)
    missing_rating                an aspect with no rating that is not N/A
    missing_critique_score        a critique whose overall score could not be read (the critic
                                  wrote feedback but no readable `Overall score`)
    duplicate_response            the same response as another completion of the same prompt,
                                  up to letter case and surrounding whitespace
    na_rating                     an aspect the judge marked N/A (informational: no severity)

The flags table holds one row per completion with a flag that is not only informational (every
completion with all_rows=True): prompt_id, completion_index, model, source, overall_score,
aspect_mean, critique_gap (rescaled overall minus rescaled mean), severity, flags and reasons
(two aligned lists, one entry per finding), sorted by severity, worst first. Severity = the
rescaled gap |critique_gap| + 3 for a critique disagreement + 1 per other finding (na_rating
counts 0): Notus's case, an overall 10 over ratings 1,1,2,1 (3.94), comes before a completion
with two contradicting rationales (2.x), because a critique score that contradicts every rating
decides the chosen response of critique-score binarization.

The summary counts completions per flag (`flag_counts`), per aspect, per model and per source.
All of it is column-wise numpy / pyarrow; the reason strings are built for flagged rows only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.curate import lexicon
from notos.data.completions import (
    Completions,
    na_column,
    rating_column,
    rationale_column,
)
from notos.errors import DataError, NotosError

CRITIQUE_DISAGREES = "critique_disagrees"
CONTRADICTS_RATIONALE = "rating_contradicts_rationale"
MISSING_RATING = "missing_rating"
MISSING_CRITIQUE_SCORE = "missing_critique_score"
DUPLICATE_RESPONSE = "duplicate_response"
NA_RATING = "na_rating"
FLAGS = (CRITIQUE_DISAGREES, CONTRADICTS_RATIONALE, MISSING_RATING, MISSING_CRITIQUE_SCORE, DUPLICATE_RESPONSE,
         NA_RATING)
INFORMATIONAL = (NA_RATING,)
FLAG_WEIGHTS = {CRITIQUE_DISAGREES: 3.0}  # severity per finding; the others weigh 1 (see the docstring)
CRITIQUE_RULES = ("gap", "classic", "none")
RATIONALE_CHECKS = ("lexicon", "none")
UNKNOWN = "(unknown)"
_EPS = 1e-9  # a gap of exactly max_gap counts, whatever the float rounding


def audit(c: Completions, *, critique_rule: str = "gap", max_gap: float = 0.5, high_overall: float = 9.0,
          low_mean: float = 2.0, rationale_check: str = "lexicon", high_rating: float = 4.0,
          low_rating: float = 2.0, all_rows: bool = False) -> tuple[pa.Table, dict]:
    """(flags table worst first, summary dict); see the module doc for the flags and options."""
    _check_options(critique_rule, max_gap, high_overall, low_mean, rationale_check, high_rating, low_rating)
    table = c.table
    _check_columns(table, c.aspects)
    n = table.num_rows
    ratings = np.column_stack([_floats(table.column(rating_column(a))) for a in c.aspects]) \
        if c.aspects else np.empty((n, 0))
    na = np.column_stack([_bools(table.column(na_column(a))) for a in c.aspects]) \
        if c.aspects else np.zeros((n, 0), bool)
    overall = _floats(table.column("overall_score"))
    _check_ranges(table, c.aspects, ratings, overall)

    mean = _aspect_mean(ratings)
    gap = (overall - 1) / 9 - (mean - 1) / 4  # NaN where either is unknown
    findings = []  # (rows, flag, reasons, aspect or None), in the order a completion's flags are listed
    if critique_rule != "none":
        findings.append(_critique(overall, mean, gap, critique_rule, max_gap, high_overall, low_mean))
    if rationale_check == "lexicon":
        findings += [_contradiction(table, aspect, ratings[:, a], high_rating, low_rating)
                     for a, aspect in enumerate(c.aspects)]
    missing = np.isnan(ratings) & ~na
    findings += [(np.flatnonzero(missing[:, a]), MISSING_RATING, f"{aspect}: no rating", aspect)
                 for a, aspect in enumerate(c.aspects)]
    critiqued = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(table.column("critique"))), 0), False)
    unscored = np.asarray(critiqued.to_numpy(zero_copy_only=False), bool) & np.isnan(overall)
    findings.append((np.flatnonzero(unscored), MISSING_CRITIQUE_SCORE, "critique without a readable overall score", None))
    findings.append(_duplicates(table))
    findings += [(np.flatnonzero(na[:, a]), NA_RATING, f"{aspect}: rated N/A", aspect)
                 for a, aspect in enumerate(c.aspects)]

    flags, reasons, weight = _lists(findings, n)
    severity = np.round(np.nan_to_num(np.abs(gap)) + weight, 4)
    out = pa.table({
        "prompt_id": table.column("prompt_id"), "completion_index": table.column("completion_index"),
        "model": table.column("model"), "source": table.column("source"),
        "overall_score": pa.array(overall, from_pandas=True), "aspect_mean": pa.array(np.round(mean, 4), from_pandas=True),
        "critique_gap": pa.array(np.round(gap, 4), from_pandas=True), "severity": severity,
        "flags": flags, "reasons": reasons,
    })
    keep = np.arange(n) if all_rows else np.flatnonzero(weight > 0)
    out = out.take(pa.array(keep, pa.int64()))
    order = pc.sort_indices(out, [("severity", "descending"), ("prompt_id", "ascending"),
                                  ("completion_index", "ascending")])
    return out.take(order), _summary(table, c.aspects, findings, weight, n)


# --- the checks ---------------------------------------------------------------------------------

def _critique(overall, mean, gap, rule, max_gap, high_overall, low_mean):
    both = ~np.isnan(gap)
    classic = both & (overall >= high_overall - _EPS) & (mean <= low_mean + _EPS)
    hit = classic if rule == "classic" else classic | (both & (np.abs(np.where(both, gap, 0)) >= max_gap - _EPS))
    rows = np.flatnonzero(hit)
    reasons = [f"critique {o:.{1 if round(o, 1) == o else 2}f} vs aspect mean {m:.2f} (rescaled gap {abs(g):.2f})"
               for o, m, g in zip(overall[rows], mean[rows], gap[rows])]
    return rows, CRITIQUE_DISAGREES, reasons, None


def _contradiction(table: pa.Table, aspect: str, rating: np.ndarray, high: float, low: float):
    texts = table.column(rationale_column(aspect))
    high_rows = np.flatnonzero(rating >= high)
    low_rows = np.flatnonzero(rating <= low)
    high_hit = high_rows[lexicon.reads_negative(_take(texts, high_rows))]
    low_hit = low_rows[lexicon.reads_positive(_take(texts, low_rows))]
    rows = np.concatenate([high_hit, low_hit])
    cues = (lexicon.first_cue(_take(texts, high_hit), negative=True)
            + lexicon.first_cue(_take(texts, low_hit), negative=False))
    reasons = [f"{aspect}: rated {r:g} but the rationale reads {'negative' if r >= high else 'positive'} ('{cue}')"
               for r, cue in zip(rating[rows], cues)]
    order = np.argsort(rows, kind="stable")
    return rows[order], CONTRADICTS_RATIONALE, [reasons[i] for i in order], aspect


def _duplicates(table: pa.Table):
    """Completions of one prompt whose responses match up to case and surrounding whitespace.

    Comparing every response's text would read all of it (hundreds of MB at full size), so the
    candidates are the completions of a prompt with the same trimmed byte length (from the
    offsets and the few bytes at each end), and only those are compared.
    """
    responses = table.column("response")
    length = _trimmed_lengths(responses)
    prompt = _codes(table.column("prompt_id"))
    sizes, _ = _groups(prompt, length)
    candidates = np.flatnonzero((sizes > 1) & (length >= 0))
    text = pc.ascii_lower(pc.ascii_trim_whitespace(_take(responses, candidates)))
    sizes, group = _groups(prompt[candidates], length[candidates], _codes(text))
    rows, group = candidates[sizes > 1], group[sizes > 1]
    index = _ints(table.column("completion_index"))[rows]
    members = {}
    for g, k in zip(group.tolist(), index.tolist()):
        members.setdefault(g, []).append(str(k))
    reasons = []
    for g, k in zip(group.tolist(), index.tolist()):
        others = [o for o in members[g] if o != str(k)] or [str(k)]  # an index used twice: itself
        reasons.append(f"same response as completion{'s' if len(others) > 1 else ''} {', '.join(others)}")
    return rows, DUPLICATE_RESPONSE, reasons, None


def _trimmed_lengths(strings: pa.ChunkedArray) -> np.ndarray:
    """Byte length of each string without leading / trailing ASCII whitespace; -1 for null."""
    parts = [np.zeros(0, np.int64)]
    for chunk in strings.chunks:
        if len(chunk) == 0:
            continue
        wide = pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type)
        width = 8 if wide else 4
        offsets = np.frombuffer(chunk.buffers()[1], np.int64 if wide else np.int32, len(chunk) + 1,
                                chunk.offset * width).astype(np.int64)
        buffer = chunk.buffers()[2]
        data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
        start, end = offsets[:-1].copy(), offsets[1:].copy()
        for edge, step in ((start, 1), (end, -1)):  # move each edge past whitespace, few steps each
            active = np.flatnonzero(start < end)
            while len(active):
                spaced = _WHITESPACE[data[edge[active] - (step == -1)]]
                active = active[spaced]
                edge[active] += step
                active = active[start[active] < end[active]]
        length = end - start
        if chunk.null_count:
            length[~_bools(chunk.is_valid())] = -1
        parts.append(length)
    return np.concatenate(parts)


_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True


# --- assembling the table and the summary -------------------------------------------------------

def _lists(findings, n: int):
    """Two aligned list<string> columns (flags, reasons) and each row's severity weight."""
    rows = np.concatenate([np.asarray(r, np.int64) for r, _, _, _ in findings] + [np.zeros(0, np.int64)])
    names = pa.array([flag for _, flag, _, _ in findings], pa.string())
    which = np.concatenate([np.full(len(r), i, np.int64) for i, (r, _, _, _) in enumerate(findings)]
                           + [np.zeros(0, np.int64)])
    reasons = pa.concat_arrays([pa.array(np.full(len(r), why, object) if isinstance(why, str) else why, pa.string())
                                for r, _, why, _ in findings] + [pa.array([], pa.string())])
    order = np.argsort(rows, kind="stable")  # findings were appended in flag order: stable keeps it
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int32)
    flags = pa.ListArray.from_arrays(pa.array(offsets), names.take(pa.array(which[order])))
    reasons = pa.ListArray.from_arrays(pa.array(offsets), reasons.take(pa.array(order)))
    counted = np.array([0.0 if flag in INFORMATIONAL else FLAG_WEIGHTS.get(flag, 1.0) for _, flag, _, _ in findings])
    weight = np.bincount(rows, weights=counted[which], minlength=n)
    return flags, reasons, weight


def _summary(table: pa.Table, aspects, findings, weight, n: int) -> dict:
    masks = {flag: np.zeros(n, bool) for flag in FLAGS}
    by_aspect = {flag: {} for flag in (CONTRADICTS_RATIONALE, MISSING_RATING, NA_RATING)}
    for rows, flag, _, aspect in findings:
        masks[flag][rows] = True
        if flag in by_aspect:
            by_aspect[flag][aspect] = by_aspect[flag].get(aspect, 0) + len(rows)
    flagged = weight > 0
    return {
        "completions": n, "prompts": len(pc.unique(table.column("prompt_id"))),
        "flagged": int(flagged.sum()), "share_flagged": round(float(flagged.mean()), 4) if n else 0.0,
        "flag_counts": {flag: int(mask.sum()) for flag, mask in masks.items()},
        "contradictions_by_aspect": {a: by_aspect[CONTRADICTS_RATIONALE].get(a, 0) for a in aspects},
        "missing_by_aspect": {a: by_aspect[MISSING_RATING].get(a, 0) for a in aspects},
        "na_by_aspect": {a: by_aspect[NA_RATING].get(a, 0) for a in aspects},
        "by_model": _breakdown(table.column("model"), flagged, masks),
        "by_source": _breakdown(table.column("source"), flagged, masks),
    }


def _breakdown(labels: pa.ChunkedArray, flagged: np.ndarray, masks: dict) -> dict:
    encoded = pc.dictionary_encode(pc.fill_null(labels, UNKNOWN)).combine_chunks()
    codes = _ints(encoded.indices)
    names = encoded.dictionary.to_pylist()
    total = np.bincount(codes, minlength=len(names))
    hit = np.bincount(codes, weights=flagged, minlength=len(names))
    per_flag = {flag: np.bincount(codes, weights=mask, minlength=len(names)) for flag, mask in masks.items()}
    out = {}
    for i in np.argsort(names, kind="stable"):
        out[names[i]] = {"completions": int(total[i]), "flagged": int(hit[i]),
                         "share_flagged": round(float(hit[i] / total[i]), 4),
                         **{flag: int(counts[i]) for flag, counts in per_flag.items()}}
    return out


# --- input checks and column helpers ------------------------------------------------------------

def _check_options(critique_rule, max_gap, high_overall, low_mean, rationale_check, high_rating, low_rating):
    if critique_rule not in CRITIQUE_RULES:
        raise NotosError(f"audit: unknown critique_rule '{critique_rule}' (choose from {', '.join(CRITIQUE_RULES)})")
    if rationale_check not in RATIONALE_CHECKS:
        raise NotosError(f"audit: unknown rationale_check '{rationale_check}' (choose from "
                         f"{', '.join(RATIONALE_CHECKS)}; an LLM check is not built in)")
    if not 0 < max_gap <= 1:
        raise NotosError(f"audit: max_gap must be in (0, 1] on the rescaled 0-1 scale (got {max_gap})")
    if not 1 <= high_overall <= 10:
        raise NotosError(f"audit: high_overall must be on the critique's 1-10 scale (got {high_overall})")
    for name, value in (("low_mean", low_mean), ("high_rating", high_rating), ("low_rating", low_rating)):
        if not 1 <= value <= 5:
            raise NotosError(f"audit: {name} must be on the aspects' 1-5 scale (got {value})")
    if low_rating >= high_rating:
        raise NotosError(f"audit: low_rating ({low_rating}) must be below high_rating ({high_rating})")


def _check_columns(table: pa.Table, aspects) -> None:
    needed = ["prompt_id", "completion_index", "model", "source", "response", "overall_score"]
    for aspect in aspects:
        needed += [rating_column(aspect), na_column(aspect), rationale_column(aspect)]
    absent = [name for name in needed if name not in table.column_names]
    if absent:
        raise DataError(f"audit: the completions table has no column {', '.join(repr(a) for a in absent)}")


def _check_ranges(table: pa.Table, aspects, ratings: np.ndarray, overall: np.ndarray) -> None:
    for values, low, high, column in [(overall, 1, 10, "overall_score")] + [
            (ratings[:, a], 1, 5, rating_column(aspect)) for a, aspect in enumerate(aspects)]:
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero((values < low) | (values > high))
        if len(bad):
            row = int(bad[0])
            raise DataError(f"audit: column '{column}' holds {values[row]:g} (prompt_id "
                            f"{table.column('prompt_id')[row].as_py()!r}, completion {table.column('completion_index')[row].as_py()}); "
                            f"expected {low}-{high}")


def _aspect_mean(ratings: np.ndarray) -> np.ndarray:
    counts = np.sum(~np.isnan(ratings), axis=1)
    return np.where(counts > 0, np.nansum(ratings, axis=1) / np.maximum(counts, 1), np.nan)


def _groups(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each element, how many elements share all its keys, and a number for that group."""
    if len(keys[0]) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort(keys[::-1])
    changed = np.zeros(len(order), bool)
    changed[0] = True
    for key in keys:
        ordered = key[order]
        changed[1:] |= ordered[1:] != ordered[:-1]
    run = np.cumsum(changed) - 1
    group = np.empty(len(order), np.int64)
    group[order] = run
    return np.bincount(run)[group], group


def _codes(values) -> np.ndarray:
    encoded = pc.dictionary_encode(_plain(values))
    return _ints(encoded.indices)


def _take(values: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """values[rows] for ascending rows, chunk by chunk: ChunkedArray.take would first join all the
    chunks, copying every string (hundreds of MB of responses)."""
    bounds = np.cumsum([0] + [len(chunk) for chunk in values.chunks])
    cuts = np.searchsorted(rows, bounds)
    parts = [chunk.take(pa.array(rows[cuts[i]:cuts[i + 1]] - bounds[i], pa.int64()))
             for i, chunk in enumerate(values.chunks) if cuts[i + 1] > cuts[i]]
    return pa.concat_arrays(parts) if parts else pa.array([], values.type)


def _plain(values):
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _floats(values) -> np.ndarray:
    return pc.cast(_plain(values), pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _ints(values) -> np.ndarray:
    return np.asarray(pc.fill_null(_plain(values), 0).to_numpy(zero_copy_only=False), np.int64)


def _bools(values) -> np.ndarray:
    return np.asarray(pc.fill_null(_plain(values), False).to_numpy(zero_copy_only=False), bool)
