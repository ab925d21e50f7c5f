"""Deduplication: exact (normalized) and near duplicates (MinHash LSH on words and word pairs), clusters as
connected components, the first prompt of each kept, and the signatures and candidates shown
equal to datasketch's own MinHash and MinHashLSH."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from notos.curate.decontaminate import WordHashes, split_words, word_values
from notos.curate.dedup import (
    band_params,
    candidate_pairs,
    cluster_prompts,
    connected_components,
    deduplicate,
    minhash_signatures,
    shingle_hash32,
)
from notos.data.completions import completions_from_rows
from notos.errors import NotosError

# 104 words -> 100 word 5-grams. One word changed in the middle touches 5 of them: the two texts
# share 95 of 105 distinct 5-grams, Jaccard 0.905. In words and word pairs (the default shingles)
# they share 185 of 191, Jaccard 0.969.
LONG = ("I am planning a two week trip through northern Italy next spring with my partner and our two teenage "
        "children. We will fly into Milan, then want to visit Lake Como, Verona, Venice, Bologna and Florence "
        "before flying home from Rome. We prefer trains over renting a car, enjoy museums and long walks, and "
        "have a moderate budget for hotels. Please suggest a day by day itinerary with travel times between "
        "cities, one or two sights per day that teenagers will enjoy, and tips for saving money on tickets and "
        "meals along the way. We also need advice on which passes are worth buying.")
OTHERS = [
    "Write a haiku about the first snow of winter.",
    "Explain the difference between a list and a tuple in Python, with an example of when to use each.",
    "What were the main causes of the French Revolution, and how did they interact with each other?",
    "Summarize the plot of Moby Dick in three sentences for a ten year old reader.",
]


def completions(prompts: list[tuple[str, str]]):
    """Two completions per (prompt_id, prompt)."""
    return completions_from_rows([{"prompt_id": pid, "prompt": text, "completion_index": k, "response": f"r{k}"}
                                  for pid, text in prompts for k in range(2)])


def clusters_by_id(clusters) -> dict:
    return {r["prompt_id"]: r for r in clusters.to_pylist()}


def test_exact_duplicates_after_case_punctuation_and_whitespace():
    c = completions([("a", "What is the capital of France?"), ("x", OTHERS[0]),
                     ("b", "  what is the   CAPITAL of france"), ("c", "What is the capital of France ?!")])
    kept, clusters = deduplicate(c)
    assert kept.table.column("prompt_id").to_pylist() == ["a", "a", "x", "x"]
    rows = clusters_by_id(clusters)
    assert set(rows) == {"a", "b", "c"}  # one-prompt clusters are not listed
    assert [rows[p]["kept"] for p in "abc"] == [True, False, False]
    assert [rows[p]["reason"] for p in "abc"] == [None, "exact", "exact"]
    assert {rows[p]["representative"] for p in "abc"} == {"a"}
    assert {rows[p]["cluster_id"] for p in "abc"} == {0}
    assert [rows[p]["similarity"] for p in "abc"] == [1.0, 1.0, 1.0]


def test_one_word_changed_in_a_long_prompt_is_a_near_duplicate():
    edited = LONG.replace("museums", "galleries")
    c = completions([("x", OTHERS[1]), ("long", LONG), ("edited", edited), ("y", OTHERS[2])])
    kept, clusters = deduplicate(c)
    assert kept.table.column("prompt_id").to_pylist() == ["x", "x", "long", "long", "y", "y"]
    rows = clusters_by_id(clusters)
    assert rows["edited"]["reason"] == "near"
    assert rows["edited"]["representative"] == "long"
    assert rows["edited"]["similarity"] == pytest.approx(185 / 191, abs=0.06)  # MinHash estimate of 0.969
    assert rows["long"]["kept"] and rows["long"]["reason"] is None
    # at a threshold above their similarity they are two prompts
    kept, clusters = deduplicate(c, threshold=0.99, ngram=5)  # 5-grams: 0.905
    assert clusters.num_rows == 0 and kept.table.num_rows == 8


def test_clusters_are_connected_components():
    # A -> B -> C -> D, one more word changed each step: neighbours share 95 of 105 5-grams (0.905),
    # A and D only 85 of 115 (0.74): below a 0.85 threshold, yet one cluster through B and C.
    b = LONG.replace("Milan,", "Turin,")
    c_ = b.replace("museums", "galleries")
    d = c_.replace("tips", "ideas")
    c = completions([("A", LONG), ("x", OTHERS[0]), ("B", b), ("C", c_), ("D", d), ("C-loud", c_.upper())])
    kept, clusters = deduplicate(c, threshold=0.85, ngram=5)  # the 5-gram figures above
    rows = clusters_by_id(clusters)
    assert set(rows) == {"A", "B", "C", "D", "C-loud"}
    assert {r["representative"] for r in rows.values()} == {"A"}
    assert rows["D"]["similarity"] < 0.85  # D joined through the chain, not on its own
    # the reason compares with the kept prompt: C-loud is C's exact copy but only near to A
    assert [rows[p]["reason"] for p in ("B", "C", "D", "C-loud")] == ["near"] * 4
    assert kept.table.column("prompt_id").to_pylist() == ["A", "A", "x", "x"]


def test_distinct_prompts_are_all_kept():
    c = completions([(f"p{i}", text) for i, text in enumerate(OTHERS + [LONG])])
    kept, clusters = deduplicate(c)
    assert clusters.num_rows == 0
    assert kept.table.equals(c.table)


def test_cluster_ids_follow_the_kept_prompt_and_every_completion_of_a_dropped_prompt_goes():
    rows = [{"prompt_id": pid, "prompt": text, "completion_index": k, "response": f"r{k}"}
            for pid, text, n in [("q1", OTHERS[3], 3), ("q2", LONG, 4), ("q3", OTHERS[3].lower(), 2),
                                 ("q4", LONG + "!", 1)] for k in range(n)]
    c = completions_from_rows(rows)
    kept, clusters = deduplicate(c)
    assert kept.table.column("prompt_id").to_pylist() == ["q1"] * 3 + ["q2"] * 4
    assert clusters.select(["cluster_id", "prompt_id", "kept", "representative"]).to_pylist() == [
        {"cluster_id": 0, "prompt_id": "q1", "kept": True, "representative": "q1"},
        {"cluster_id": 0, "prompt_id": "q3", "kept": False, "representative": "q1"},
        {"cluster_id": 1, "prompt_id": "q2", "kept": True, "representative": "q2"},
        {"cluster_id": 1, "prompt_id": "q4", "kept": False, "representative": "q2"},
    ]


def test_prompts_with_no_words_are_exact_duplicates_of_each_other():
    c = completions([("e1", ""), ("t", OTHERS[0]), ("e2", "?!"), ("e3", "   ")])
    kept, clusters = deduplicate(c)
    assert kept.table.column("prompt_id").to_pylist() == ["e1", "e1", "t", "t"]
    assert pc.sum(pc.equal(clusters.column("reason"), "exact")).as_py() == 2


def test_deterministic_across_runs():
    prompts = [(f"p{i}", text) for i, text in enumerate(
        OTHERS + [LONG, LONG.replace("Rome", "Naples"), LONG.replace("trains", "buses")])]
    first = deduplicate(completions(prompts))
    second = deduplicate(completions(prompts))
    assert first[0].table.equals(second[0].table)
    assert first[1].equals(second[1])
    assert first[1].num_rows == 3


def test_bad_options_give_one_line_errors():
    c = completions([("a", "x")])
    for kwargs, word in (({"threshold": 0}, "threshold"), ({"threshold": 1.2}, "threshold"),
                         ({"num_perm": 1}, "num_perm"), ({"ngram": 0}, "ngram")):
        with pytest.raises(NotosError, match=word) as err:
            deduplicate(c, **kwargs)
        assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------- the machinery

def shingles(texts, ngram=5, seed=1):
    words = split_words(texts)
    ids = pc.dictionary_encode(pc.list_flatten(words)).indices.to_numpy(zero_copy_only=False)
    counts = pc.list_value_length(words).to_numpy(zero_copy_only=False)
    return WordHashes(word_values(int(ids.max()) + 1, seed)[ids], counts).grams(ngram)


def test_signatures_equal_datasketch_minhash():
    from datasketch import MinHash

    texts = [LONG, OTHERS[1], "short one"]
    doc, hashes = shingles(texts)
    ours = minhash_signatures(doc, hashes, len(texts), num_perm=64, seed=7)
    for d in range(len(texts)):
        theirs = MinHash(num_perm=64, seed=7, hashfunc=lambda v: v)
        theirs.update_batch([int(v) for v in shingle_hash32(hashes[doc == d])])
        assert np.array_equal(ours[d], theirs.hashvalues)


def test_candidate_pairs_equal_minhashlsh_queries():
    from datasketch import LeanMinHash, MinHashLSH

    texts = OTHERS + [LONG] + [LONG.replace(w, "X") for w in ("Milan", "museums", "tips", "Rome", "trip")] + \
        [OTHERS[1].replace("tuple", "set"), OTHERS[2].replace("French", "Russian")]
    doc, hashes = shingles(texts)
    signatures = minhash_signatures(doc, hashes, len(texts), num_perm=128, seed=1)
    for threshold in (0.5, 0.8, 0.9):
        bands, rows = band_params(threshold, 128)
        left, right = candidate_pairs(signatures, bands, rows)
        lsh = MinHashLSH(num_perm=128, params=(bands, rows))
        for i, sig in enumerate(signatures):
            lsh.insert(i, LeanMinHash(seed=1, hashvalues=sig, scheme="affine32"))
        expected = {(min(i, j), max(i, j)) for i, sig in enumerate(signatures)
                    for j in lsh.query(LeanMinHash(seed=1, hashvalues=sig, scheme="affine32")) if i != j}
        assert set(zip(left.tolist(), right.tolist())) == expected
        if threshold == 0.5:  # LONG and its five variants (Jaccard 0.82 to 0.905): 15 pairs and more
            assert len(expected) >= 15


def test_connected_components_label_each_node_with_its_smallest():
    assert connected_components(6, np.array([3, 1, 2]), np.array([4, 2, 3])).tolist() == [0, 1, 1, 1, 1, 5]
    assert connected_components(5, np.array([3, 2, 1, 0]), np.array([4, 3, 2, 1])).tolist() == [0] * 5
    assert connected_components(7, np.array([6, 5, 2]), np.array([0, 3, 6])).tolist() == [0, 1, 0, 3, 4, 3, 0]
    assert connected_components(3, np.array([], int), np.array([], int)).tolist() == [0, 1, 2]


def test_cluster_prompts_on_plain_texts():
    representative, exact, similarity = cluster_prompts(["b a", "c", "B, A!", "c d"])
    assert representative.tolist() == [0, 1, 0, 3]
    assert exact.tolist() == [True, True, True, True]
    assert similarity.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_band_params_favour_recall_and_survive_thresholds_near_one():
    bands, rows = band_params(0.8, 128)
    assert bands * rows <= 128
    assert 1 - (1 - 0.85 ** rows) ** bands > 0.99  # a pair at 0.85 is nearly always a candidate
    assert 1 - (1 - 0.5 ** rows) ** bands < 0.1    # one at 0.5 seldom
    assert band_params(1.0, 128) == (2, 64)        # MinHashLSH refuses one band; two halves instead
    c = completions([("a", LONG), ("b", LONG.replace("museums", "galleries")), ("c", LONG + "?")])
    assert deduplicate(c, threshold=1.0)[1].column("prompt_id").to_pylist() == ["a", "c"]
