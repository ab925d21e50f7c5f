"""Remove prompts that copy benchmark prompts: by source name, exact text, or shared word n-grams.

UltraFeedback carried TruthfulQA prompts; a model tuned on them scores better on TruthfulQA
for the wrong reason. Three tests, in this order of precedence:

- `source`: the prompt's source names a benchmark (`truthful_qa`, `TruthfulQA`, `truthful-qa` all
  match: names are compared lower-cased with everything but letters and digits removed);
- `exact`: the normalized prompt equals a normalized benchmark prompt;
- `ngram`: the prompt shares word n-grams (default 13, as in the GPT-3 and OpenAI decontamination)
  with a benchmark prompt. The overlap is the share of the benchmark prompt's distinct n-grams
  found in the prompt, so a benchmark question pasted inside a longer prompt scores 1.0. With the
  default threshold 0 any shared n-gram removes the prompt; a threshold t > 0 needs overlap >= t.

A text shorter than n words counts as one gram: the whole normalized text. So a short benchmark
prompt is caught only by a prompt that is exactly it, on purpose: MT-Bench's second turns
("Rewrite your previous response.") would otherwise flag every prompt that contains the phrase.

Speed (64k prompts of ~110 words against 2,000 benchmark prompts: about 1.5 s on 2 cores):
texts are normalized and split by pyarrow, each word becomes a random 64-bit value, and every
n-gram (and whole text) a polynomial hash read off prefix sums in numpy (`WordHashes`). Words
absent from the benchmark cannot be part of a shared n-gram, so n-grams holding one are skipped;
the rest are tested against the benchmark's hashes with one Arrow hash-set lookup. Exact matches
compare whole-text hashes (64 bits: a false match has odds of about 1e-10 at that size).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.data.completions import Completions
from notos.data.locate import SUFFIXES
from notos.errors import DataError, NotosError

EXCERPT_CHARS = 200
CHUNK_PROMPTS = 8192
TEXT_SUFFIXES = (".txt", ".text")
ROW_SUFFIXES = tuple(SUFFIXES)  # every file `notos.data.locate` knows
TEXT_COLUMNS = ("prompt", "instruction", "question", "text")  # tried in this order
ID_COLUMNS = ("question_id", "id", "idx", "uid")
REMOVAL_SCHEMA = pa.schema([
    ("prompt_id", pa.string()), ("prompt", pa.string()), ("source", pa.string()), ("reason", pa.string()),
    ("benchmark", pa.string()), ("benchmark_id", pa.string()), ("benchmark_text", pa.string()),
    ("overlap", pa.float64()),
])
# Punctuation, symbols, control characters and every Unicode space but U+0020 become a space, so
# afterwards splitting on ASCII spaces splits words. Leaving U+0020 out keeps the regex from
# rewriting every single space (six times slower).
_PUNCT_OR_ODD_SPACE = r"[\p{P}\p{S}\p{Cc}\p{Zl}\p{Zp}\x{a0}\x{1680}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}]+"
_POLY = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial n-gram hash, so invertible
_POLY_INVERSE = np.uint64(pow(int(_POLY), -1, 2**64))


@dataclass(frozen=True)
class BenchmarkItem:
    benchmark: str  # e.g. "mt_bench"
    item_id: str    # unique within the benchmark's file, e.g. "mt_bench:81:turn1"
    text: str


# ---------------------------------------------------------------------------- benchmark files

def read_benchmark(paths) -> list[BenchmarkItem]:
    """Benchmark prompts from files: a path, a list of paths, or {name: path}.

    JSONL / JSON / Parquet / CSV rows in MT-Bench's shape (`turns`: each turn is a prompt, id
    `<name>:<question_id>:turn<k>`) or with a `prompt` / `instruction` (AlpacaEval) / `question` /
    `text` column; plain text files hold one prompt per line. The benchmark name is the file stem,
    or the folder for FastChat's `<benchmark>/question.jsonl` layout (so MT-Bench is `mt_bench`).
    """
    if isinstance(paths, Mapping):
        named = [(str(name), Path(path)) for name, path in paths.items()]
    else:
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        named = [(None, Path(path)) for path in paths]
    if not named:
        raise NotosError("decontaminate: no benchmark files given (--benchmark)")
    items: list[BenchmarkItem] = []
    for name, path in named:
        items += _read_one(path, name)
    return items


def _read_one(path: Path, name: str | None) -> list[BenchmarkItem]:
    suffix = path.suffix.lower()
    if path.is_file() and suffix in TEXT_SUFFIXES:
        return _read_text_lines(path, name or path.stem)
    if path.is_file() and suffix not in ROW_SUFFIXES:
        raise DataError(f"{path}: unknown benchmark file type '{suffix or '(none)'}' "
                        f"(use {', '.join(ROW_SUFFIXES + TEXT_SUFFIXES)})")
    if not path.exists():
        raise DataError(f"{path}: no such benchmark file")
    from notos.data.io import read_rows

    rows = read_rows(str(path))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if "turns" in columns:
        if name is None:
            name = path.parent.name if path.stem == "question" and path.parent.name else path.stem
        items = _turn_items(rows, path, name)
    else:
        column = next((c for c in TEXT_COLUMNS if c in columns), None)
        if column is None:
            raise DataError(f"{path}: no benchmark prompt column (expected turns, {', '.join(TEXT_COLUMNS)}; "
                            f"found: {', '.join(columns) or 'none'})")
        items = _column_items(rows, path, name or path.stem, column)
    if not items:
        raise DataError(f"{path}: no benchmark prompts (every prompt is empty)")
    return items


def _read_text_lines(path: Path, name: str) -> list[BenchmarkItem]:
    try:
        lines = path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8") from None
    items = [BenchmarkItem(name, f"{name}:{number}", line.strip())
             for number, line in enumerate(lines, 1) if line.strip()]
    if not items:
        raise DataError(f"{path}: no benchmark prompts (the file has only blank lines)")
    return items


def _turn_items(rows: list[dict], path: Path, name: str) -> list[BenchmarkItem]:
    items = []
    for number, row in enumerate(rows, 1):
        turns = row.get("turns")
        if turns is None:
            continue
        if not isinstance(turns, list):
            raise DataError(f"{path}: row {number}: column 'turns' must be a list of prompts, got {type(turns).__name__}")
        local_id = _local_id(row, number)
        for k, turn in enumerate(turns, 1):
            if isinstance(turn, dict):  # Arena-Hard's turns: [{"content": ...}]
                turn = turn.get("content")
            text = _text_value(turn, path, number, "turns")
            if text:
                items.append(BenchmarkItem(name, f"{name}:{local_id}:turn{k}", text))
    return items


def _column_items(rows: list[dict], path: Path, name: str, column: str) -> list[BenchmarkItem]:
    items = []
    for number, row in enumerate(rows, 1):
        text = _text_value(row.get(column), path, number, column)
        if text:
            items.append(BenchmarkItem(name, f"{name}:{_local_id(row, number)}", text))
    return items


def _local_id(row: dict, number: int) -> str:
    value = next((row[c] for c in ID_COLUMNS if row.get(c) not in (None, "")), None)
    return str(value) if value is not None else str(number)


def _text_value(value, path: Path, number: int, column: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataError(f"{path}: row {number}: column '{column}' must hold text, got {type(value).__name__}")
    return value.strip()


# ---------------------------------------------------------------------------- text and n-grams

def normalize(text: str) -> str:
    """Casefold, Unicode NFKC, punctuation and symbols removed, whitespace collapsed."""
    return normalize_texts([text])[0].as_py()


def normalize_texts(texts) -> pa.StringArray:
    """`normalize` over a list / Arrow array of texts (None becomes "")."""
    return pc.binary_join(split_words(texts), " ")


def split_words(texts) -> pa.ListArray:
    """The words of each normalized text."""
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = texts.to_pylist()
    # NFKC and casefold in Python: both run in C, and pyarrow has no casefold (ß -> ss).
    folded = pa.array([unicodedata.normalize("NFKC", t).casefold() if t else "" for t in texts], pa.string())
    spaced = pc.ascii_trim_whitespace(pc.replace_substring_regex(folded, _PUNCT_OR_ODD_SPACE, " "))
    words = pc.ascii_split_whitespace(spaced)
    empty = pc.equal(spaced, "")
    if pc.any(empty).as_py():  # pyarrow splits "" into [""]: make that no words
        counts = pc.list_value_length(words).to_numpy(zero_copy_only=False) * ~empty.to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(words)
        words = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32()),
                                         flat.filter(pc.not_equal(flat, "")))
    return words


def word_values(count: int, seed: int = 0) -> np.ndarray:
    """A random 64-bit value per word id: the letters of the n-gram hash."""
    return np.random.default_rng(seed).integers(0, 2**64, size=count, dtype=np.uint64, endpoint=False)


class WordHashes:
    """Polynomial hashes of any run of words, texts laid one after another.

    The hash of words [a, b) is sum_k values[a+k] * P^k (mod 2^64), read off prefix sums as
    (S[b] - S[a]) * P^-a: a handful of passes over the words whatever the n-gram length."""

    def __init__(self, values: np.ndarray, counts: np.ndarray, unknown: np.ndarray | None = None):
        self.counts = np.asarray(counts, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        total = int(self.offsets[-1])
        powers = np.full(total, _POLY)
        powers[:1] = 1
        self.prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(values * np.cumprod(powers), out=self.prefix[1:])
        self.inverse = np.full(total + 1, _POLY_INVERSE)
        self.inverse[0] = 1
        np.cumprod(self.inverse, out=self.inverse)
        # unknown words (absent from the other side) spoil every run they are in
        self.unknown = None if unknown is None else np.concatenate([[0], np.cumsum(unknown, dtype=np.int64)])

    def runs(self, start: np.ndarray, length) -> np.ndarray:
        return (self.prefix[start + length] - self.prefix[start]) * self.inverse[start]

    def all_known(self, start: np.ndarray, length) -> np.ndarray:
        return np.ones(len(start), bool) if self.unknown is None else \
            self.unknown[start + length] == self.unknown[start]

    def texts(self) -> tuple[np.ndarray, np.ndarray]:
        """(hash of each whole text, salted by its length; whether it has words, none unknown)."""
        start = self.offsets[:-1]
        whole = self.runs(start, self.counts) * _POLY + self.counts.astype(np.uint64)
        return whole, self.all_known(start, self.counts) & (self.counts > 0)

    def grams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(text index, hash) of every word n-gram without an unknown word, sorted by text. A text
        of 1..n-1 words gives one gram: its whole-text hash."""
        total = int(self.offsets[-1])
        if total >= n:
            span = total - n + 1
            # doc_of[i]: the text holding word i (the count of text ends at or before i)
            doc_of = np.cumsum(np.bincount(self.offsets[1:], minlength=total + 1)[:total])
            ok = doc_of[n - 1:] == doc_of[:span]  # the gram stays inside one text
            if self.unknown is not None:
                ok &= self.unknown[n:] == self.unknown[:span]
            start = np.flatnonzero(ok)
            doc, h = doc_of[start], self.runs(start, n)  # sorted by text
        else:
            doc, h = np.zeros(0, np.int64), np.zeros(0, np.uint64)
        whole, usable = self.texts()
        short = np.flatnonzero(usable & (self.counts < n))
        if len(short):  # a short text has no n-gram: slot its one gram in at its place
            at = np.searchsorted(doc, short)
            doc, h = np.insert(doc, at, short), np.insert(h, at, whole[short])
        return doc, h


# ---------------------------------------------------------------------------- matching

def find_contamination(prompts, sources, benchmark_items: list[BenchmarkItem], *, sources_to_drop=("truthful_qa",),
                       ngram: int = 13, threshold: float = 0.0) -> pa.Table:
    """One row per prompt: contaminated, reason (source|exact|ngram), the best-matching benchmark
    item (benchmark, benchmark_id, benchmark_text excerpt) and its overlap (share of its n-grams
    found in the prompt; 1.0 for an exact match). A `source` removal still names the best text
    match when there is one."""
    if not isinstance(ngram, (int, np.integer)) or isinstance(ngram, bool) or ngram < 1:
        raise NotosError(f"decontaminate: option 'ngram' must be a whole number >= 1, got {ngram!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise NotosError(f"decontaminate: option 'threshold' must be between 0 and 1, got {threshold!r}")
    prompt_words = split_words(prompts)
    count = len(prompt_words)
    items = [i for i in benchmark_items if i.text]
    by_source = _source_matches(sources, sources_to_drop, count)
    best_item = np.full(count, -1, dtype=np.int64)
    overlap = np.zeros(count, dtype=np.float64)
    is_exact = np.zeros(count, dtype=bool)
    bench_words = split_words([i.text for i in items])
    vocabulary = pc.unique(pc.list_flatten(bench_words))
    if len(vocabulary):
        values = word_values(len(vocabulary))
        bench = _hashes(bench_words, vocabulary, values)
        prompt = _hashes(prompt_words, vocabulary, values)
        _ngram_matches(prompt, bench, ngram, best_item, overlap)
        below = overlap < max(float(threshold), np.nextafter(0.0, 1.0))  # no shared n-gram is never a match
        best_item[below], overlap[below] = -1, 0.0
        exact = _exact_matches(prompt, bench)
        is_exact = exact >= 0
        best_item[is_exact], overlap[is_exact] = exact[is_exact], 1.0
    reason = np.where(by_source, "source", np.where(is_exact, "exact", np.where(best_item >= 0, "ngram", "")))
    matched = best_item >= 0
    take = pa.array(best_item, mask=~matched)
    names = pa.array([i.benchmark for i in items], pa.string())
    ids = pa.array([i.item_id for i in items], pa.string())
    excerpts = pa.array([_excerpt(i.text) for i in items], pa.string())
    return pa.table({
        "contaminated": pa.array(reason != ""),
        "reason": pa.array(reason, mask=reason == "", type=pa.string()),
        "benchmark": names.take(take), "benchmark_id": ids.take(take), "benchmark_text": excerpts.take(take),
        "overlap": pa.array(overlap, mask=~matched, type=pa.float64()),
    })


def _hashes(words: pa.ListArray, vocabulary: pa.Array, values: np.ndarray) -> WordHashes:
    """Word hashes over the benchmark's vocabulary; other words are unknown."""
    ids = pc.fill_null(pc.index_in(pc.list_flatten(words), value_set=vocabulary), -1).to_numpy(zero_copy_only=False)
    known = ids >= 0
    counts = pc.list_value_length(words).to_numpy(zero_copy_only=False)
    return WordHashes(np.where(known, values[np.maximum(ids, 0)], 0), counts, None if known.all() else ~known)


def _source_matches(sources, sources_to_drop, count: int) -> np.ndarray:
    if sources is None or not sources_to_drop:
        return np.zeros(count, dtype=bool)
    if isinstance(sources_to_drop, str):
        sources_to_drop = (sources_to_drop,)
    if not isinstance(sources, (pa.Array, pa.ChunkedArray)):
        sources = pa.array(list(sources), pa.string())
    if len(sources) != count:
        raise NotosError(f"decontaminate: {len(sources)} sources for {count} prompts")
    keys = _source_keys(pc.cast(sources, pa.string()))
    wanted = _source_keys(pa.array([str(s) for s in sources_to_drop], pa.string()))
    return pc.fill_null(pc.is_in(keys, value_set=wanted), False).to_numpy(zero_copy_only=False)


def _source_keys(names):
    return pc.replace_substring_regex(pc.utf8_lower(names), r"[^\p{L}\p{N}]+", "")


def _exact_matches(prompt: WordHashes, bench: WordHashes) -> np.ndarray:
    """Index of the first benchmark item with the same normalized word sequence (equal whole-text
    hashes), else -1."""
    prompt_hash, prompt_clean = prompt.texts()
    bench_hash, bench_clean = bench.texts()
    keys, first = np.unique(bench_hash[bench_clean], return_index=True)
    first = np.flatnonzero(bench_clean)[first]  # np.unique returns each key's first occurrence
    out = np.full(len(prompt_hash), -1, dtype=np.int64)
    if len(keys):
        position = np.minimum(np.searchsorted(keys, prompt_hash), len(keys) - 1)
        hit = prompt_clean & (keys[position] == prompt_hash)
        out[hit] = first[position[hit]]
    return out


def _ngram_matches(prompt: WordHashes, bench: WordHashes, n: int, best_item: np.ndarray, overlap: np.ndarray) -> None:
    """Fill best_item / overlap (in place) with each prompt's best n-gram match."""
    item_of, item_hash = _distinct_pairs(*bench.grams(n))
    grams_per_item = np.bincount(item_of, minlength=len(bench.counts))
    by_hash = np.argsort(item_hash, kind="stable")
    item_of, item_hash = item_of[by_hash], item_hash[by_hash]
    prompt_of, prompt_hash = prompt.grams(n)
    if not len(item_hash) or not len(prompt_hash):
        return
    # Arrow's hash-set membership test, then the few hits located in the sorted benchmark hashes
    hit = pc.is_in(pa.array(prompt_hash), value_set=pa.array(item_hash)).to_numpy(zero_copy_only=False)
    prompt_of, prompt_hash = _distinct_pairs(prompt_of[hit], prompt_hash[hit])
    if not len(prompt_of):
        return
    # Each shared hash may belong to several items: one (prompt, item) row per owner.
    low = np.searchsorted(item_hash, prompt_hash, side="left")
    owners = np.searchsorted(item_hash, prompt_hash, side="right") - low
    row = np.repeat(np.arange(len(low)), owners)
    within = np.arange(len(row)) - np.repeat(np.cumsum(owners) - owners, owners)
    pair_prompt, pair_item = prompt_of[row], item_of[low[row] + within]
    items = len(bench.counts)
    key, shared = np.unique(pair_prompt * items + pair_item, return_counts=True)
    pair_prompt, pair_item = key // items, key % items
    share = shared / grams_per_item[pair_item]
    # Best item per prompt: highest overlap, then the earliest item.
    order = np.lexsort((pair_item, -share, pair_prompt))
    first = order[np.r_[True, pair_prompt[order][1:] != pair_prompt[order][:-1]]]
    best_item[pair_prompt[first]] = pair_item[first]
    overlap[pair_prompt[first]] = share[first]


def _distinct_pairs(doc: np.ndarray, h: np.ndarray):
    if not len(doc):
        return doc, h
    order = np.lexsort((h, doc))
    doc, h = doc[order], h[order]
    keep = np.r_[True, (doc[1:] != doc[:-1]) | (h[1:] != h[:-1])]
    return doc[keep], h[keep]


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS - 1] + "…"


# ---------------------------------------------------------------------------- on completions

def first_row_per_prompt(table: pa.Table) -> np.ndarray:
    """Row index of each prompt's first completion, in order of first appearance."""
    codes = pc.dictionary_encode(table.column("prompt_id").combine_chunks()).indices
    _, first = np.unique(codes.to_numpy(zero_copy_only=False), return_index=True)
    return np.sort(first)


def one_row_per_prompt(table: pa.Table) -> pa.Table:
    """Each prompt's first row; the table itself (no copy of the texts) when it has one row per
    prompt already, as the prompts of `notos curate all` do."""
    first = first_row_per_prompt(table)
    return table if len(first) == table.num_rows else table.take(first)


def drop_prompts(c: Completions, prompt_ids: pa.Array) -> Completions:
    """The completions of every prompt not in prompt_ids."""
    if not len(prompt_ids):
        return c
    keep = pc.invert(pc.is_in(c.table.column("prompt_id"), value_set=prompt_ids))
    return Completions(keep_rows(c.table, keep.to_numpy(zero_copy_only=False)), c.aspects)


def keep_rows(table: pa.Table, keep: np.ndarray, max_runs: int = 10_000) -> pa.Table:
    """table.filter(keep), without copying when few rows go: the kept runs become zero-copy
    slices (removing 1% of 256k completions would otherwise copy ~0.5 GB of text)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], keep, [False]]).astype(np.int8)))
    starts, stops = edges[0::2], edges[1::2]
    if len(starts) > max_runs:
        return table.filter(pa.array(keep))
    if not len(starts):
        return table.slice(0, 0)
    return pa.concat_tables([table.slice(int(a), int(b - a)) for a, b in zip(starts, stops)])


def decontaminate(c: Completions, benchmark_paths, *, sources_to_drop=("truthful_qa",), ngram: int = 13,
                  threshold: float = 0.0) -> tuple[Completions, pa.Table]:
    """(the completions of clean prompts, one removal row per removed prompt with the item it matched).

    `benchmark_paths`: what `read_benchmark` takes, or a list of BenchmarkItem."""
    paths = list(benchmark_paths) if isinstance(benchmark_paths, (list, tuple)) else None
    if paths and all(isinstance(p, BenchmarkItem) for p in paths):
        items = paths
    else:
        items = read_benchmark(benchmark_paths)
    prompts = one_row_per_prompt(c.table.select(["prompt_id", "prompt", "source"]))
    # In chunks of prompts: the word-level arrays of 64k prompts at once take ~0.5 GB.
    found = pa.concat_tables([
        find_contamination(prompts.column("prompt").slice(start, CHUNK_PROMPTS),
                           prompts.column("source").slice(start, CHUNK_PROMPTS), items,
                           sources_to_drop=sources_to_drop, ngram=ngram, threshold=threshold)
        for start in range(0, max(prompts.num_rows, 1), CHUNK_PROMPTS)])
    mask = found.column("contaminated")
    removed = pa.table({
        "prompt_id": prompts.column("prompt_id"), "prompt": prompts.column("prompt"),
        "source": prompts.column("source"),
        **{name: found.column(name) for name in REMOVAL_SCHEMA.names[3:]},
    }).filter(mask).cast(REMOVAL_SCHEMA)
    return drop_prompts(c, removed.column("prompt_id")), removed
