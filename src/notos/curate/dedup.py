"""Remove duplicate prompts: exact (after normalization) and near duplicates (MinHash LSH).

Two prompts are near duplicates when the estimated Jaccard similarity of their shingle sets
reaches the threshold. A shingle is a run of 1 to `ngram` words (default 2: the words and the
word pairs) of the normalized text (`notos.curate.decontaminate.normalize`). Why so short:
the copies that matter are a prompt with a few words changed, and every changed word spoils
every shingle it is in. Measured on 20-110-word prompts (AlpacaEval's instructions with 1-3
random word substitutions, insertions or deletions, among 20,000 unrelated prompts): word
5-gram shingles at 0.8 found 82% / 33% / 12% of the copies with 1 / 2 / 3 edits; words and
word pairs at 0.6 find 100% / 100% / 100%, and no unrelated prompt. What the threshold means:
at 0.6, a 20-word prompt may differ in about 3 words, a 100-word prompt in about 15; two
unrelated prompts rarely share even a third of their words and pairs. Prompts under
`min_words` (default 10) words only match exactly: at that size one word is the question
("What is 2+2?" and "What is 3+3?" are two prompts).

Clusters are connected components (A~B and B~C put A, B, C together even when A and C are not
alike); the first prompt of a cluster, in input order, is kept and the others go with all their
completions. The clusters table lists every prompt of every cluster of two or more.

Speed: the signatures are datasketch's MinHash (its permutations and its `affine32` scheme, with
our 32-bit shingle hashes as the hash function; datasketch itself is not imported), computed for all prompts at once in numpy
rather than one `update` per prompt; the banding uses MinHashLSH's own choice of (bands, rows)
for the threshold (weighted toward recall, see `band_params`), bucketed with numpy sorts instead
of MinHashLSH's per-key inserts and queries (6.5 s at 64k prompts). Each candidate pair is then
checked: estimated Jaccard >= threshold.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.curate.decontaminate import (
    WordHashes,
    drop_prompts,
    one_row_per_prompt,
    split_words,
)
from notos.curate.memory import release_memory
from notos.data.completions import Completions
from notos.errors import NotosError

RECALL_WEIGHTS = (0.05, 0.95)  # MinHashLSH's (false positive, false negative) weights
MAX_BUCKET_PAIRS = 100  # a band bucket larger than this pairs each member with its first only
CLUSTER_SCHEMA = pa.schema([
    ("cluster_id", pa.int64()), ("prompt_id", pa.string()), ("kept", pa.bool_()), ("reason", pa.string()),
    ("representative", pa.string()), ("similarity", pa.float64()), ("prompt", pa.string()),
])
_POLY = np.uint64(0x9E3779B97F4A7C15)


DEFAULT_THRESHOLD = 0.6
DEFAULT_NGRAM = 2
DEFAULT_MIN_WORDS = 10


def deduplicate(c: Completions, *, threshold: float = DEFAULT_THRESHOLD, num_perm: int = 128, ngram: int = DEFAULT_NGRAM,
                seed: int = 1, min_words: int = DEFAULT_MIN_WORDS) -> tuple[Completions, pa.Table]:
    """(the completions of the first prompt of each cluster, the clusters table).

    clusters: cluster_id (0.. in order of the kept prompt), prompt_id, kept, reason (null for the
    kept prompt; `exact` when its normalized text equals the kept prompt's, else `near`),
    representative (the kept prompt's id), similarity (estimated Jaccard with the kept prompt;
    1.0 for exact), prompt."""
    _check_options(threshold, num_perm, ngram)
    prompts = one_row_per_prompt(c.table.select(["prompt_id", "prompt"]))
    representative, exact, similarity = cluster_prompts(prompts.column("prompt"), threshold=threshold,
                                                        num_perm=num_perm, ngram=ngram, seed=seed, min_words=min_words)
    size = np.bincount(representative, minlength=len(representative))
    member = np.flatnonzero(size[representative] > 1)
    cluster = np.unique(representative[member], return_inverse=True)[1].astype(np.int64)
    order = np.lexsort((member, cluster))
    member, cluster = member[order], cluster[order]
    rep = representative[member]
    kept = member == rep
    reason = np.where(exact[member], "exact", "near")
    ids, texts = prompts.column("prompt_id"), prompts.column("prompt")
    clusters = pa.table({
        "cluster_id": cluster, "prompt_id": ids.take(member), "kept": kept,
        "reason": pa.array(reason, mask=kept, type=pa.string()), "representative": ids.take(rep),
        "similarity": similarity[member], "prompt": texts.take(member),
    }, schema=CLUSTER_SCHEMA)
    dropped = clusters.filter(pc.invert(clusters.column("kept"))).column("prompt_id")
    return drop_prompts(c, dropped), clusters


def cluster_prompts(texts, *, threshold: float = DEFAULT_THRESHOLD, num_perm: int = 128, ngram: int = DEFAULT_NGRAM,
                    seed: int = 1, min_words: int = DEFAULT_MIN_WORDS):
    """Per text: the index of its cluster's first text, whether its normalized text equals that
    one's, and its estimated Jaccard similarity with it (1.0 for exact duplicates)."""
    _check_options(threshold, num_perm, ngram)
    parts = _words_of(texts, seed)
    counts = np.concatenate([np.zeros(0, np.int64)] + [c for c, _ in parts])
    count = len(counts)

    def chunks():  # (first text, WordHashes) of each chunk of texts
        start = 0
        for part_counts, part_values in parts:
            yield start, WordHashes(part_values, part_counts)
            start += len(part_counts)
    # Exact: the same 64-bit hash of the normalized word sequence (all empty texts hash alike).
    whole, has_words = (np.concatenate(parts) for parts in zip(*(h.texts() for _, h in chunks())))
    _, first, group = np.unique(whole, return_index=True, return_inverse=True)
    exact_first = first[group.reshape(-1)]
    # Near: among the first text of each exact group that has words.
    docs = np.flatnonzero((exact_first == np.arange(count)) & has_words & (counts >= min_words))
    representative = exact_first.copy()
    similarity = np.ones(count)
    if len(docs) > 1:
        doc_index = np.full(count, -1)
        doc_index[docs] = np.arange(len(docs))
        signatures = np.empty((len(docs), num_perm), np.uint32)
        for start, hashes in chunks():
            local = doc_index[start:start + len(hashes.counts)]
            mine = local >= 0
            if mine.any():
                signatures[local[mine]] = _signatures(hashes, np.cumsum(mine) - 1, mine, ngram, num_perm, seed)
            release_memory()
        left, right = candidate_pairs(signatures, *band_params(threshold, num_perm))
        alike = estimated_jaccard(signatures, left, right) >= threshold
        doc_label = connected_components(len(docs), left[alike], right[alike])
        near = doc_index[exact_first] >= 0  # texts whose exact group took part
        own = doc_index[exact_first[near]]
        representative[near] = docs[doc_label[own]]
        similarity[near] = estimated_jaccard(signatures, own, doc_label[own])
    exact = whole == whole[representative]
    return representative, exact, np.where(exact, 1.0, similarity)


def _words_of(texts, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per chunk of texts: (words per text, a 64-bit value per word). A word's value is a hash of
    its bytes, so no vocabulary of the whole dataset is ever built (at 256k prompts the word
    strings and their dictionary took ~0.7 GB), and the chunks are never joined."""
    parts = []
    for start in range(0, len(texts), CHUNK_TEXTS):
        words = split_words(texts[start:start + CHUNK_TEXTS])
        parts.append((pc.list_value_length(words).to_numpy(zero_copy_only=False).astype(np.int64),
                      _hash_strings(pc.list_flatten(words), seed)))
    return parts


def _hash_strings(strings: pa.Array, seed: int) -> np.ndarray:
    """A 64-bit value per string from its UTF-8 bytes, column-wise: each byte times a mix of its
    position, summed per string, then mixed with the length and the seed."""
    strings = pc.cast(strings, pa.large_string())
    if len(strings) == 0:
        return np.zeros(0, np.uint64)
    _, offsets_buf, data_buf = strings.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[strings.offset:strings.offset + len(strings) + 1]
    data = np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[-1]] if data_buf is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    starts = offsets[:-1] - offsets[0]
    position = np.arange(len(data), dtype=np.uint64) - np.repeat(starts, lengths).astype(np.uint64)
    summed = np.zeros(len(strings), np.uint64)
    nonempty = lengths > 0
    if nonempty.any():
        summed[nonempty] = np.add.reduceat((data.astype(np.uint64) + np.uint64(1)) * _mix64(position), starts[nonempty])
    return _mix64(summed ^ _mix64(lengths.astype(np.uint64) + np.uint64(seed % 2**64)))


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise (wrapping uint64 arithmetic)."""
    x = np.asarray(x, np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


CHUNK_TEXTS = 8192  # texts hashed at a time: the word-level arrays of 64k prompts at once take ~0.5 GB


def _signatures(hashes: WordHashes, local_doc: np.ndarray, mine: np.ndarray, ngram: int, num_perm: int, seed: int):
    """Signatures of the texts of one chunk marked `mine`, numbered by local_doc."""
    signatures = None
    for n in range(1, ngram + 1):  # the MinHash of a union is the minimum of the MinHashes
        doc, shingles = hashes.grams(n)
        keep = mine[doc]
        part = minhash_signatures(local_doc[doc[keep]], shingles[keep], int(mine.sum()), num_perm, seed)
        signatures = part if signatures is None else np.minimum(signatures, part, out=signatures)
    return signatures


def _check_options(threshold, num_perm, ngram) -> None:
    if not 0.0 < float(threshold) <= 1.0:
        raise NotosError(f"dedup: option 'threshold' must be in (0, 1], got {threshold!r}")
    for name, value, low in (("num_perm", num_perm, 2), ("ngram", ngram, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise NotosError(f"dedup: option '{name}' must be a whole number >= {low}, got {value!r}")


# ---------------------------------------------------------------------------- MinHash LSH

def _datasketch_permutations(num_perm: int, seed: int):
    """The (a, b) of datasketch's affine32 MinHash(num_perm, seed), drawn as it draws them (its
    `_init_permutations`): importing datasketch costs ~2 s (scipy), more than the hashing."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def shingle_hash32(hashes: np.ndarray) -> np.ndarray:
    """Fold 64-bit shingle hashes to the 32-bit values datasketch's affine32 MinHash takes."""
    return ((hashes >> np.uint64(32)) ^ (hashes & np.uint64(0xFFFFFFFF))).astype(np.uint32)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer: datasketch mixes each input hash with it before permuting."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def minhash_signatures(doc: np.ndarray, hashes: np.ndarray, count: int, num_perm: int, seed: int) -> np.ndarray:
    """[count, num_perm] uint32: for doc d, what datasketch's MinHash(num_perm, seed) holds after
    update_batch(its shingle_hash32 values) with an identity hashfunc. `doc` is sorted and every
    doc 0..count-1 has at least one shingle."""
    a, b = _datasketch_permutations(num_perm, seed)
    mixed = _fmix32(shingle_hash32(hashes))
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    if len(starts) != count:
        raise ValueError("every document needs at least one shingle")
    by_perm = np.empty((num_perm, count), dtype=np.uint32)

    def fill(ks):  # numpy lets go of the GIL in these loops, so threads share the permutations
        scratch = np.empty_like(mixed)
        for k in ks:  # one pass over all shingles per permutation; uint32 wraps as in datasketch
            np.multiply(mixed, a[k], out=scratch)
            np.add(scratch, b[k], out=scratch)
            np.minimum.reduceat(scratch, starts, out=by_perm[k])

    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fill, np.array_split(np.arange(num_perm), workers)))
    return np.ascontiguousarray(by_perm.T)


def band_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) as MinHashLSH picks them for this threshold, weighted 0.05 / 0.95
    against missed pairs: every candidate is checked afterwards, so a false candidate costs a
    comparison while a missed one leaves a duplicate in. (Its default equal weights find only
    about 70% of the pairs at 0.05 above a 0.8 threshold; these find 99%.) Its optimisation
    (`datasketch.lsh._optimal_param`), with the integrals taken on a fine grid in numpy rather
    than scipy's quad."""
    bands, rows = zip(*[(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    bands, rows = np.array(bands, float)[:, None], np.array(rows, float)[:, None]
    low, high = np.linspace(0.0, threshold, 2001), np.linspace(threshold, 1.0, 2001)
    false_positive = np.trapezoid(1 - (1 - low ** rows) ** bands, low, axis=1)
    false_negative = np.trapezoid((1 - high ** rows) ** bands, high, axis=1)
    best = int(np.argmin(false_positive * RECALL_WEIGHTS[0] + false_negative * RECALL_WEIGHTS[1]))
    b, r = int(bands[best, 0]), int(rows[best, 0])
    if b < 2:  # near 1.0 the optimum is a single band, which MinHashLSH refuses: take two halves
        return 2, num_perm // 2
    return b, r


def candidate_pairs(signatures: np.ndarray, bands: int, rows: int):
    """(left, right) with left < right: pairs of docs that agree on all rows of some band."""
    count = len(signatures)
    found = []
    for band in range(bands):
        key = np.zeros(count, dtype=np.uint64)
        for column in range(band * rows, (band + 1) * rows):
            key = key * _POLY + signatures[:, column].astype(np.uint64)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        start = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        size = np.diff(np.r_[start, count])
        if size.max() < 2:
            continue
        first = np.repeat(start, size)
        position = np.arange(count) - first
        # each member pairs with every earlier member of its bucket (or just the first, in huge ones)
        partners = np.where(np.repeat(size, size) <= MAX_BUCKET_PAIRS, position, np.minimum(position, 1))
        member = np.repeat(np.arange(count), partners)
        earlier = np.arange(len(member)) - np.repeat(np.cumsum(partners) - partners, partners)
        found.append(np.stack([order[first[member] + earlier], order[member]]))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.concatenate(found, axis=1)
    low, high = pairs.min(axis=0).astype(np.int64), pairs.max(axis=0).astype(np.int64)
    key = np.unique(low * count + high)
    return key // count, key % count


def estimated_jaccard(signatures: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Share of equal MinHash values per pair (datasketch's MinHash.jaccard)."""
    out = np.empty(len(left))
    for start in range(0, len(left), chunk):
        end = start + chunk
        out[start:end] = (signatures[left[start:end]] == signatures[right[start:end]]).mean(axis=1)
    return out


def connected_components(count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Label of each node = the smallest node of its component (union-find by min-label
    propagation with pointer jumping)."""
    label = np.arange(count)
    if not len(left):
        return label
    while True:
        low = np.minimum(label[left], label[right])
        before = label.copy()
        np.minimum.at(label, left, low)
        np.minimum.at(label, right, low)
        np.minimum.at(label, before, label.copy())  # a root adopts the smaller label one of its nodes found
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):
            return label
