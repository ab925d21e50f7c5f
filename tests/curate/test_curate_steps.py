"""Curation as pipeline steps over UltraFeedback records, through the real engine."""

import json

import pytest

from notos.curate.steps import audit, binarize, decontaminate, dedup
from notos.errors import GraphError
from notos.pipeline import from_rows, load_run, run


def record(i, aspect_ratings, overall, instruction=None, source="sharegpt"):
    completions = []
    for k, (rating, score) in enumerate(zip(aspect_ratings, overall)):
        annotations = {a: {"Rating": str(rating), "Rationale": "Reasonable."}
                       for a in ("instruction_following", "honesty", "truthfulness", "helpfulness")}
        completions.append({"model": f"m{k}", "response": f"response {k} of {i}", "annotations": annotations,
                            "critique": "ok", "overall_score": score})
    return {"id": f"p{i}", "instruction": instruction or f"Tell me about subject number {i} in detail please.",
            "source": source, "completions": completions}


def run_steps(tmp_path, rows, *steps):
    source = from_rows(rows=rows, id_column="id")
    chain = source
    for step in steps:
        chain = chain >> step
    run(source, tmp_path / "r", progress=False)
    return load_run(tmp_path / "r")[steps[-1].name].to_list()


def test_dedup_decontaminate_audit_binarize_in_one_pipeline(tmp_path, caplog):
    bench = tmp_path / "bench.jsonl"
    leaked = "Explain how a refrigerator moves heat from the inside to the outside of the cabinet in plain words."
    bench.write_text(json.dumps({"question_id": 7, "turns": [leaked, "Shorter now."]}) + "\n")
    rows = [
        record(0, [5, 2, 3], [6, 9, 4]),
        record(1, [5, 2, 3], [6, 9, 4], instruction="TELL me about subject number 0 in detail please!"),  # a duplicate of p0
        record(2, [1, 4, 2], [10, 7, 2]),
        record(3, [3, 3], [5, 5], instruction=leaked),
        record(4, [4, 1], [8, 2], source="truthful_qa"),
    ]
    caplog.set_level("INFO", logger="notos")
    pairs = run_steps(tmp_path, rows, dedup(name="unique"), decontaminate(benchmark=[str(bench)], name="clean"),
                      audit(name="flags"), binarize(strategy="mean", name="pairs"))
    by_id = {p["row_id"]: p for p in pairs}
    assert set(by_id) == {"p0", "p2"}  # p1 duplicate, p3 leaked, p4 truthful_qa
    assert by_id["p0"]["index_chosen"] == 0 and by_id["p0"]["chosen"] == [{"role": "assistant", "content": "response 0 of 0"}]
    assert by_id["p2"]["index_chosen"] == 1 and by_id["p2"]["strategy"] == "mean"
    logged = caplog.text
    assert "dedup: removed 1 of 5 prompts" in logged and "decontaminate: removed 2 of 4 prompts" in logged


def test_audit_adds_flags_per_completion(tmp_path):
    rows = [record(0, [1, 5], [10, 9]), record(1, [3, 4], [5, 7])]
    audited = {r["row_id"]: r for r in run_steps(tmp_path, rows, audit(name="flags"))}
    assert "critique_disagrees" in audited["p0"]["audit_flags"][0] and audited["p0"]["audit_flags"][1] == []
    assert audited["p0"]["audit_severity"] > 3
    assert audited["p1"]["audit_flags"] == [[], []] and audited["p1"]["audit_severity"] < 1  # only a small gap
    assert audited["p0"]["completions"][0]["overall_score"] == 10  # the record itself is unchanged


def test_all_pairs_get_child_ids(tmp_path):
    pairs = run_steps(tmp_path, [record(0, [5, 3, 1], [9, 5, 1])], binarize(strategy="all-pairs", name="pairs"))
    assert sorted(p["row_id"] for p in pairs) == ["p0.0", "p0.1", "p0.2"]


def test_bad_options():
    with pytest.raises(GraphError, match="option 'strategy'"):
        binarize(strategy="median")
    with pytest.raises(GraphError, match="option 'benchmark'"):
        decontaminate(benchmark=[])
