"""Comparing two binarizations: shares of changed choices, by source and model, with examples."""

import json

import pyarrow as pa
import pytest

from notos.curate.binarize import binarize
from notos.curate.compare import compare
from notos.data.completions import completions_from_rows
from notos.errors import NotosError


def pairs(rows, strategy):
    """rows: (prompt_id, source, index_chosen, index_rejected, model_chosen)."""
    return pa.table({
        "prompt_id": [r[0] for r in rows], "source": [r[1] for r in rows],
        "index_chosen": pa.array([r[2] for r in rows], pa.int32()),
        "index_rejected": pa.array([r[3] for r in rows], pa.int32()),
        "score_chosen": [float(r[2] + 5) for r in rows], "score_rejected": [float(r[3]) for r in rows],
        "model_chosen": [r[4] for r in rows], "model_rejected": ["x"] * len(rows), "strategy": [strategy] * len(rows),
    })


A = pairs([("p1", "flan", 0, 1, "m0"), ("p2", "flan", 0, 1, "m0"), ("p3", "sharegpt", 2, 3, "m2"),
           ("p4", "sharegpt", 2, 3, "m2"), ("p5", None, 1, 0, "m1"), ("only-a", "flan", 0, 1, "m0")], "overall")
# p1: chosen changes; p3: rejected changes; p5: both change; p2, p4 unchanged; only-b is not in A.
B = pairs([("p5", None, 0, 1, "m0"), ("p4", "sharegpt", 2, 3, "m2"), ("p3", "sharegpt", 2, 0, "m2"),
           ("p2", "flan", 0, 1, "m0"), ("p1", "flan", 3, 1, "m3"), ("only-b", "flan", 1, 0, "m1")], "mean")


def test_shares_over_prompts_paired_by_both():
    report = compare(A, B)
    assert report["strategy_a"] == "overall" and report["strategy_b"] == "mean"
    assert (report["prompts_a"], report["prompts_b"], report["prompts_both"]) == (6, 6, 5)
    assert (report["only_a"], report["only_b"]) == (1, 1)
    assert report["n"] == 5
    assert (report["n_chosen_differs"], report["n_rejected_differs"], report["n_either_differs"]) == (2, 2, 3)
    assert (report["chosen_differs"], report["rejected_differs"], report["either_differs"]) == (0.4, 0.4, 0.6)
    json.dumps(report)  # plain JSON all the way down


def test_breakdown_by_source_and_by_chosen_model_under_a():
    report = compare(A, B)
    by_source = report["by_source"]
    assert list(by_source) == ["flan", "sharegpt", "(unknown)"]  # largest group first, then by name
    assert by_source["flan"] == {"n": 2, "chosen_differs": 0.5, "n_chosen_differs": 1, "rejected_differs": 0.0,
                                 "n_rejected_differs": 0, "either_differs": 0.5, "n_either_differs": 1}
    assert (by_source["sharegpt"]["chosen_differs"], by_source["sharegpt"]["rejected_differs"]) == (0.0, 0.5)
    assert by_source["(unknown)"]["either_differs"] == 1.0
    by_model = report["by_model"]
    assert {m: v["n"] for m, v in by_model.items()} == {"m0": 2, "m2": 2, "m1": 1}
    assert by_model["m0"]["chosen_differs"] == 0.5 and by_model["m1"]["chosen_differs"] == 1.0


def test_examples_show_both_choices_in_a_order():
    report = compare(A, B, examples=1)
    assert report["examples"] == [{
        "prompt_id": "p1", "source": "flan",
        "a": {"index_chosen": 0, "index_rejected": 1, "score_chosen": 5.0, "score_rejected": 1.0, "model_chosen": "m0"},
        "b": {"index_chosen": 3, "index_rejected": 1, "score_chosen": 8.0, "score_rejected": 1.0, "model_chosen": "m3"},
    }]
    assert [e["prompt_id"] for e in compare(A, B)["examples"]] == ["p1", "p5"]


def test_critique_score_versus_aspect_mean_on_binarized_data():
    rows = []
    # Two prompts where the critique's favourite is torn apart by its aspect ratings, two where they agree.
    for pid, overall, means in [("a", [10, 6, 2], [1, 5, 2]), ("b", [3, 9, 1], [2, 1, 5]),
                                ("c", [9, 5, 1], [5, 3, 1]), ("d", [2, 8, 4], [1, 4, 2])]:
        for k in range(3):
            rows.append({"prompt_id": pid, "prompt": pid, "source": "evol" if pid in "ab" else "flan",
                         "completion_index": k, "model": f"m{k}", "response": f"{pid}{k}",
                         "overall_score": overall[k], "rating_helpfulness": means[k]})
    c = completions_from_rows(rows, aspects=["helpfulness"])
    report = compare(binarize(c, "overall"), binarize(c, "mean"))
    assert report["n"] == 4 and report["chosen_differs"] == 0.5
    assert report["by_source"]["evol"]["chosen_differs"] == 1.0 and report["by_source"]["flan"]["chosen_differs"] == 0.0
    assert {e["prompt_id"] for e in report["examples"]} == {"a", "b"}


def test_identical_and_disjoint_inputs():
    same = compare(A, A)
    assert same["chosen_differs"] == 0.0 and same["either_differs"] == 0.0 and same["examples"] == []
    disjoint = compare(A, pairs([("zz", "flan", 0, 1, "m0")], "mean"))
    assert disjoint["n"] == 0 and disjoint["chosen_differs"] is None and disjoint["by_source"] == {}


def test_several_pairs_per_prompt_are_refused():
    many = pairs([("p1", "flan", 0, 1, "m0"), ("p1", "flan", 0, 2, "m0")], "all-pairs")
    with pytest.raises(NotosError, match="pairs B hold several pairs for one prompt"):
        compare(A, many)
    with pytest.raises(NotosError, match="pairs A have no column 'index_chosen'"):
        compare(A.drop_columns(["index_chosen"]), B)
