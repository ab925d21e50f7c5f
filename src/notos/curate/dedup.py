"""Remove duplicate prompts: exact (after normalization) and near duplicates (MinHash LSH).

Two prompts are near duplicates when the estimated Jaccard similarity of their sets of word
5-grams (shingles of the normalized text, `notos.curate.decontaminate.normalize`) reaches the
threshold. Word shingles rather than characters: a one-word edit in a 100-word prompt keeps
about 90% of them, while two unrelated prompts share almost none (character shingles make
unrelated English texts look alike through " the ", "tion " and friends, and cost six times
more hashing). A prompt shorter than 5 words is one shingle, its whole text, so short prompts
only ever match exactly.

Clusters are connected components (A~B and B~C put A, B, C together even when A and C are not
alike); the first prompt of a cluster, in input order, is kept and the others go with all their
completions. The clusters table lists every prompt of every cluster of two or more.

Speed: the signatures are datasketch's MinHash (its permutations and its `affine32` scheme, with
our 32-bit shingle hashes as the hash function), computed for all prompts at once in numpy
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

from notos.curate.decontaminate import WordHashes, drop_prompts, first_row_per_prompt, split_words, word_values
from notos.data.completions import Completions
from notos.errors import NotosError

RECALL_WEIGHTS = (0.05, 0.95)  # MinHashLSH's (false positive, false negative) weights
MAX_BUCKET_PAIRS = 100  # a band bucket larger than this pairs each member with its first only
CLUSTER_SCHEMA = pa.schema([
    ("cluster_id", pa.int64()), ("prompt_id", pa.string()), ("kept", pa.bool_()), ("reason", pa.string()),
    ("representative", pa.string()), ("similarity", pa.float64()), ("prompt", pa.string()),
])
_POLY = np.uint64(0x9E3779B97F4A7C15)


def deduplicate(c: Completions, *, threshold: float = 0.8, num_perm: int = 128, ngram: int = 5,
                seed: int = 1) -> tuple[Completions, pa.Table]:
    """(the completions of the first prompt of each cluster, the clusters table).

    clusters: cluster_id (0.. in order of the kept prompt), prompt_id, kept, reason (null for the
    kept prompt; `exact` when its normalized text equals the kept prompt's, else `near`),
    representative (the kept prompt's id), similarity (estimated Jaccard with the kept prompt;
    1.0 for exact), prompt."""
    _check_options(threshold, num_perm, ngram)
    prompts = c.table.select(["prompt_id", "prompt"]).take(first_row_per_prompt(c.table))
    representative, exact, similarity = cluster_prompts(prompts.column("prompt"), threshold=threshold,
                                                        num_perm=num_perm, ngram=ngram, seed=seed)
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


def cluster_prompts(texts, *, threshold: float = 0.8, num_perm: int = 128, ngram: int = 5, seed: int = 1):
    """Per text: the index of its cluster's first text, whether its normalized text equals that
    one's, and its estimated Jaccard similarity with it (1.0 for exact duplicates)."""
    _check_options(threshold, num_perm, ngram)
    words = split_words(texts)
    count = len(words)
    flat = pc.list_flatten(words)
    word_ids = pc.dictionary_encode(flat).indices.to_numpy(zero_copy_only=False) if len(flat) else np.zeros(0, int)
    values = word_values(int(word_ids.max(initial=0)) + 1, seed=seed)
    hashes = WordHashes(values[word_ids], pc.list_value_length(words).to_numpy(zero_copy_only=False))
    # Exact: the same 64-bit hash of the normalized word sequence (all empty texts hash alike).
    whole, has_words = hashes.texts()
    _, first, group = np.unique(whole, return_index=True, return_inverse=True)
    exact_first = first[group.reshape(-1)]
    # Near: among the first text of each exact group that has words.
    docs = np.flatnonzero((exact_first == np.arange(count)) & has_words)
    representative = exact_first.copy()
    similarity = np.ones(count)
    if len(docs) > 1:
        doc_index = np.full(count, -1)
        doc_index[docs] = np.arange(len(docs))
        doc, shingles = hashes.grams(ngram)
        mine = doc_index[doc] >= 0
        signatures = minhash_signatures(doc_index[doc[mine]], shingles[mine], len(docs), num_perm, seed)
        left, right = candidate_pairs(signatures, *band_params(threshold, num_perm))
        alike = estimated_jaccard(signatures, left, right) >= threshold
        doc_label = connected_components(len(docs), left[alike], right[alike])
        near = doc_index[exact_first] >= 0  # texts whose exact group took part
        own = doc_index[exact_first[near]]
        representative[near] = docs[doc_label[own]]
        similarity[near] = estimated_jaccard(signatures, own, doc_label[own])
    exact = whole == whole[representative]
    return representative, exact, np.where(exact, 1.0, similarity)


def _check_options(threshold, num_perm, ngram) -> None:
    if not 0.0 < float(threshold) <= 1.0:
        raise NotosError(f"dedup: option 'threshold' must be in (0, 1], got {threshold!r}")
    for name, value, low in (("num_perm", num_perm, 2), ("ngram", ngram, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise NotosError(f"dedup: option '{name}' must be a whole number >= {low}, got {value!r}")


# ---------------------------------------------------------------------------- MinHash LSH

def _datasketch_permutations(num_perm: int, seed: int):
    from datasketch import MinHash

    minhash = MinHash(num_perm=num_perm, seed=seed)
    if getattr(minhash, "scheme", None) != "affine32":
        raise NotosError("dedup needs datasketch>=2.0 (its 'affine32' MinHash scheme): pip install -U datasketch")
    a, b = minhash.permutations
    return a.astype(np.uint32), b.astype(np.uint32)


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
    about 70% of the pairs at 0.05 above a 0.8 threshold; these find 99%.)"""
    from datasketch import MinHashLSH

    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=RECALL_WEIGHTS)
    except ValueError:  # near 1.0 its optimum is a single band, which it refuses: take two halves
        return 2, num_perm // 2
    return lsh.b, lsh.r


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
