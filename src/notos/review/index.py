"""The record list at UltraFeedback scale: per-prompt numpy keys built once, sort and filter as
array work (64k prompts x 4 completions: a page in milliseconds).

A record is a prompt with its completions. Rows of the completions table are grouped by prompt
(first appearance order) and ordered by completion_index inside a prompt: `rows_of(p)`.

Sort keys, one number per prompt (NaN sorts last either way):
    position      the prompt's place in the data
    chosen        the chosen completion's score under the review's binarization (mean rating or critique)
    critique      the highest critique overall_score of the prompt's completions
    severity      the worst audit severity of its completions
    disagreement  the widest critique-vs-ratings gap (rescaled 0-1) plus one per rating that
                  contradicts its own rationale
    length        characters of the prompt and all its responses

severity and disagreement need the audit's flags (`set_flags`), length the texts (`set_texts`):
on a first start both come after the list is served, and until then those keys are NaN.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.curate.audit import CONTRADICTS_RATIONALE, FLAGS, INFORMATIONAL
from notos.data.completions import Completions, na_column, rating_column

SORTS = ("position", "chosen", "critique", "severity", "disagreement", "length")


class RecordIndex:
    """Built from the table's small columns (ids, scores, ratings); the audit's flags (`set_flags`)
    and the texts (`set_texts`) may come later: a first start shows the list before it has them."""

    def __init__(self, c: Completions, scores: np.ndarray):
        table = c.table
        self.table, self.aspects, self.scores = table, list(c.aspects), scores
        encoded = pc.dictionary_encode(_combined(table.column("prompt_id")))
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        self.ids = encoded.dictionary
        self.id_list = self.ids.to_pylist()
        self.position = {pid: p for p, pid in enumerate(self.id_list)}
        index = _ints(table.column("completion_index"))
        self.width = int(index.max()) + 1 if len(index) else 1
        self.order = np.lexsort((index, codes))
        self.sizes = np.bincount(codes, minlength=len(self.ids))
        self.starts = np.cumsum(self.sizes) - self.sizes
        self.keys_sorted = codes[self.order] * self.width + index[self.order]
        self.n = len(self.ids)
        self.row_prompt = codes
        self._columns(table)
        self.edited = np.zeros(self.n, bool)
        self.chosen_score = np.full(self.n, np.nan)
        self._sorted: dict = {}
        self._search: tuple = ("", None)
        self.audited = self.has_texts = False

    # --- building ----------------------------------------------------------------------------

    def _columns(self, table: pa.Table) -> None:
        o, s = self.order, self.starts
        rows = len(o)
        overall = _floats(table.column("overall_score"))
        ratings = np.column_stack([_floats(table.column(rating_column(a))) for a in self.aspects]) \
            if self.aspects else np.empty((rows, 0))
        self.ratings = ratings
        self.na_any = np.zeros(rows, bool)
        for a in self.aspects:
            self.na_any |= _bools(table.column(na_column(a)))
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(np.where(np.isnan(ratings), np.nan, ratings), 1) if self.aspects else np.full(rows, np.nan)
        gap = np.abs((overall - 1) / 9 - (mean - 1) / 4)
        # the widest gap per prompt; the audit's contradictions are added to it in set_flags
        self._widest_gap = _reduce(np.fmax, np.nan_to_num(gap, nan=0.0)[o], s)
        first = o[s]
        self._first = first
        self.keys = {"position": np.arange(self.n, dtype=np.float64), "critique": _reduce(np.fmax, overall[o], s)}
        for later in ("severity", "disagreement", "length"):  # what the audit / the texts fill in
            self.keys[later] = np.full(self.n, np.nan)
        self.flag_bits = np.zeros(rows, np.int64)
        self.severity = np.zeros(rows)
        self.flag_info: dict[int, dict] = {}
        source = pc.dictionary_encode(pc.fill_null(_combined(table.column("source")), ""))
        self.sources = [v for v in source.dictionary.to_pylist() if v]
        self.source_code = source.indices.to_numpy(zero_copy_only=False)[first]
        self.source_names = source.dictionary.to_pylist()
        model = pc.dictionary_encode(pc.fill_null(_combined(table.column("model")), ""))
        self.model_names = model.dictionary.to_pylist()
        self.model_code = model.indices.to_numpy(zero_copy_only=False)
        self.models = sorted(v for v in self.model_names if v)

    def set_texts(self, table: pa.Table, lengths: tuple | None = None) -> None:
        """The same rows with their texts (response, prompt): length sorts and search can run.
        `lengths`: each row's response and prompt length where the caller counted them already."""
        o, s = self.order, self.starts
        if lengths is None:  # chunk by chunk: texts are never copied
            lengths = _ints(pc.utf8_length(table.column("response"))), _ints(pc.utf8_length(table.column("prompt")))
        lengths, prompt_len = lengths
        self.table = table
        self.keys["length"] = (np.add.reduceat(lengths[o], s) if len(o) else np.zeros(0)) + prompt_len[self._first]
        self._sorted = {k: v for k, v in self._sorted.items() if k[0] != "length"}
        self._search = ("", None)
        self.has_texts = True

    def set_flags(self, flags: pa.Table) -> None:
        """The audit's flags: flag filters, severity and disagreement sorts, a completion's reasons."""
        o, s = self.order, self.starts
        rows = len(o)
        flag_bits, severity, contradictions = np.zeros(rows, np.int64), np.zeros(rows), np.zeros(rows)
        info: dict[int, dict] = {}
        if flags.num_rows:
            flagged = self.rows_for(flags.column("prompt_id"), flags.column("completion_index"))
            severity[flagged] = _floats(flags.column("severity"))
            names = _combined(flags.column("flags"))
            owner = flagged[_np(pc.list_parent_indices(names))]  # each finding's table row
            code = _np(pc.fill_null(pc.index_in(pc.list_flatten(names), value_set=pa.array(FLAGS)), -1))
            counted = (code >= 0) & ~np.isin(code, [FLAGS.index(f) for f in INFORMATIONAL])
            np.bitwise_or.at(flag_bits, owner[counted], np.left_shift(1, code[counted]))
            np.add.at(contradictions, owner, code == FLAGS.index(CONTRADICTS_RATIONALE))
            for row, found, reasons, value in zip(flagged.tolist(), names.to_pylist(),
                                                 flags.column("reasons").to_pylist(), severity[flagged].tolist()):
                info[row] = {"flags": found, "reasons": reasons, "severity": value}
        self.flag_bits, self.severity, self.flag_info = flag_bits, severity, info
        self.keys["severity"] = _reduce(np.fmax, severity[o], s)
        self.keys["disagreement"] = self._widest_gap + np.add.reduceat(contradictions[o], s) if rows else np.zeros(0)
        self._sorted = {k: v for k, v in self._sorted.items() if k[0] not in ("severity", "disagreement")}
        self.audited = True

    def set_chosen(self, chosen_rows: np.ndarray) -> None:
        """chosen_rows[p]: the table row of prompt p's chosen completion (-1: no pair)."""
        self.chosen_score = np.where(chosen_rows >= 0, self.scores[np.maximum(chosen_rows, 0)], np.nan)
        self.keys["chosen"] = self.chosen_score
        self._sorted.pop("chosen", None)

    def rows_for(self, prompt_ids, completion_indexes) -> np.ndarray:
        """Table rows of (prompt_id, completion_index) pairs (which must exist)."""
        codes = pc.index_in(_combined(prompt_ids), value_set=self.ids).to_numpy(zero_copy_only=False).astype(np.int64)
        wanted = codes * self.width + _ints(completion_indexes)
        return self.order[np.searchsorted(self.keys_sorted, wanted)]

    def rows_of(self, p: int) -> np.ndarray:
        return self.order[self.starts[p]:self.starts[p] + self.sizes[p]]

    def table_of(self, p: int) -> pa.Table:
        """Prompt p's rows as a small table of zero-copy slices (a take() on the mapped table
        would copy whole columns)."""
        return pa.concat_tables([self.table.slice(int(r), 1) for r in self.rows_of(p)])

    # --- querying ----------------------------------------------------------------------------

    def query(self, sort: str = "position", descending: bool = False, **filters) -> np.ndarray:
        """Prompt positions in display order after the filters (see `mask`)."""
        ranked = self._ranked(sort, descending)
        mask = self.mask(**filters)
        return ranked if mask is None else ranked[mask[ranked]]

    def _ranked(self, sort: str, descending: bool) -> np.ndarray:
        key = (sort, descending)
        if key not in self._sorted:
            values = self.keys[sort]
            # NaN last either way; ties keep data order (stable sort)
            self._sorted[key] = np.argsort(-values if descending else values, kind="stable")
        return self._sorted[key]

    def mask(self, source=None, model=None, aspect=None, low=None, high=None, flag=None, na=None, edited=None,
             q=None) -> np.ndarray | None:
        """Prompts that pass every given filter (None: no filter given). A completion-level
        filter (model, aspect range, flag, N/A) keeps a prompt when any of its completions passes."""
        keep = None

        def both(part):
            nonlocal keep
            keep = part if keep is None else keep & part

        if source:
            code = self.source_names.index(source) if source in self.source_names else -1
            both(self.source_code == code)
        per_row = None
        if model:
            code = self.model_names.index(model) if model in self.model_names else -1
            per_row = self.model_code == code
        if aspect in self.aspects and (low is not None or high is not None):
            r = self.ratings[:, self.aspects.index(aspect)]
            with np.errstate(invalid="ignore"):
                hit = (r >= (low if low is not None else -np.inf)) & (r <= (high if high is not None else np.inf))
            per_row = hit if per_row is None else per_row & hit
        if flag:
            hit = self.flag_bits != 0 if flag == "any" else (self.flag_bits & (1 << FLAGS.index(flag))) != 0 \
                if flag in FLAGS else np.zeros(len(self.flag_bits), bool)
            per_row = hit if per_row is None else per_row & hit
        if na:
            per_row = self.na_any if per_row is None else per_row & self.na_any
        if per_row is not None:
            both(self._any(per_row))
        if edited in ("yes", "no"):
            both(self.edited if edited == "yes" else ~self.edited)
        if q:
            both(self._text_mask(q))
        return keep

    def _any(self, per_row: np.ndarray) -> np.ndarray:
        if not len(per_row):
            return np.zeros(self.n, bool)
        return np.logical_or.reduceat(per_row[self.order], self.starts)

    def _text_mask(self, q: str) -> np.ndarray:
        """Prompts whose prompt or any response holds q (case-insensitive); the last query is cached."""
        if self._search[0] == q:
            return self._search[1]
        # row by row over the (memory-mapped) columns: a take() would copy them first
        hit = _bools(pc.match_substring(self.table.column("response"), q, ignore_case=True))
        hit |= _bools(pc.match_substring(self.table.column("prompt"), q, ignore_case=True))
        mask = self._any(hit)
        self._search = (q, mask)
        return mask

    def summary_row(self, p: int) -> dict:
        rows = self.rows_of(p)
        first = int(rows[0])
        prompt = self.table.column("prompt")[first].as_py() or ""
        return {
            "prompt_id": self.id_list[p], "prompt": prompt[:160], "source": self.source_names[self.source_code[p]] or None,
            "completions": len(rows), "chosen_score": _num(self.chosen_score[p]),
            "critique": _num(self.keys["critique"][p]), "severity": _num(self.keys["severity"][p]),
            "flagged": int(np.count_nonzero(self.flag_bits[rows])) if self.audited else None,
            "edited": bool(self.edited[p]),
        }


def _reduce(ufunc, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return ufunc.reduceat(values, starts) if len(values) else np.zeros(0)


def _num(value):
    return None if value is None or np.isnan(value) else round(float(value), 4)


def _combined(values):
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _floats(values) -> np.ndarray:
    return pc.cast(_combined(values), pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _ints(values) -> np.ndarray:
    return _np(pc.fill_null(values, 0)).astype(np.int64)


def _bools(values) -> np.ndarray:
    return _np(pc.fill_null(values, False)).astype(bool)


def _np(values) -> np.ndarray:
    """A column (chunked or not) as numpy, without combining its chunks first."""
    if isinstance(values, pa.ChunkedArray):
        return values.to_numpy()
    return values.to_numpy(zero_copy_only=False)
