"""The critique step (UltraCM style) against the loopback critic."""

import pytest

from notos.errors import GraphError
from notos.pipeline import from_rows, load_run, run
from notos.tasks import critique


def critic(server):
    return {"backend": "openai", "base_url": server.base_url, "model": "critic", "max_retries": 0}


def test_each_response_gets_its_own_feedback_and_score(llm_server, tmp_path):
    data = [{"instruction": f"q{i}", "generations": [f"a [{i % 5 + 1}]", f"b [{(i + 2) % 5 + 1}]", "c [x]"]} for i in range(6)]
    result = run(from_rows(rows=data) >> critique(llm=critic(llm_server), name="critique"), tmp_path / "r", progress=False)
    rows = {r["instruction"]: r for r in load_run(tmp_path / "r")["critique"].to_list()}
    for i in range(6):
        row = rows[f"q{i}"]
        assert row["overall_scores"] == [2.0 * (i % 5 + 1), 2.0 * ((i + 2) % 5 + 1), None]
        assert row["critiques"][0].startswith("Feedback: the response 'a [")
        assert row["critique_errors"][:2] == [None, None] and row["critique_errors"][2]
        assert row["critique_model"] == "critic" and row["_error"] is None
    assert len(llm_server.requests) == 18 and result.stats["critique"]["tokens"] > 0


def test_a_failed_request_fails_its_row_and_a_single_response_column_works(llm_server, tmp_path):
    data = [{"instruction": "ok", "answer": "fine [4]"}, {"instruction": "bad", "answer": "[500] broken"}]
    step = critique(llm=critic(llm_server), name="critique", generations_column="answer")
    run(from_rows(rows=data) >> step, tmp_path / "r", progress=False)
    rows = {r["instruction"]: r for r in load_run(tmp_path / "r")["critique"].to_list()}
    assert rows["ok"]["overall_scores"] == [8.0]
    assert rows["bad"]["_error"] == "critique: HTTP 500 internal failure"


def test_bad_options():
    with pytest.raises(GraphError, match="option 'temperature'"):
        critique(name="critique", temperature=-1)
