"""The MT-Bench style judge steps (single grading, pairwise) against the loopback judge."""

import pytest

from notos.errors import GraphError
from notos.pipeline import from_rows, load_run, run
from notos.tasks.judge_steps import llm_judge, pairwise_judge


def judge(server):
    return {"backend": "openai", "base_url": server.base_url, "model": "judge", "max_retries": 0}


def run_rows(data, step, tmp_path, key="instruction"):
    result = run(from_rows(rows=data) >> step, tmp_path / "r", progress=False)
    return result, {r[key]: r for r in load_run(tmp_path / "r")[step.name].to_list()}


def prompts(server) -> list[str]:
    return [body["messages"][-1]["content"] for body in server.requests]


def test_list_mode_puts_each_score_on_its_own_response(llm_server, tmp_path):
    data = [{"instruction": f"q{i}", "response": [f"a [{i + 1}]", f"b [{5 - i}]", "c plain"]} for i in range(4)]
    result, rows = run_rows(data, llm_judge(llm=judge(llm_server), name="grade"), tmp_path)
    for i in range(4):
        row = rows[f"q{i}"]
        assert row["judge_score"] == [2.0 * (i + 1), 2.0 * (5 - i), 5.0]
        assert row["judge_rationale"] == ["Assessed."] * 3
        assert row["judge_error"] == [None, None, None]
        assert row["judge_raw"][0] == f"Assessed. [[{2 * (i + 1)}]]"
        assert row["judge_model"] == "judge" and row["_error"] is None
    assert len(llm_server.requests) == 12 and result.stats["grade"]["tokens"] > 0


def test_scalar_mode_and_an_unreadable_verdict_does_not_fail_the_row(llm_server, tmp_path):
    data = [{"instruction": "good", "response": "fine [4]"}, {"instruction": "vague", "response": "[x] who knows"}]
    _, rows = run_rows(data, llm_judge(llm=judge(llm_server), name="grade"), tmp_path)
    assert rows["good"]["judge_score"] == 8.0 and rows["good"]["judge_error"] is None
    vague = rows["vague"]
    assert vague["judge_score"] is None and vague["judge_error"] == "no [[N]] verdict"
    assert vague["judge_raw"] == vague["judge_rationale"] == "I cannot decide."
    assert vague["_error"] is None


def test_reference_reaches_the_prompt_only_where_the_row_has_one(llm_server, tmp_path):
    data = [{"instruction": "with", "response": "r [3]", "ref": "REF-42"},
            {"instruction": "without", "response": "r [3]", "ref": None}]
    step = llm_judge(llm=judge(llm_server), name="grade", reference_column="ref")
    _, rows = run_rows(data, step, tmp_path)
    assert rows["with"]["judge_score"] == rows["without"]["judge_score"] == 6.0
    by_question = {p.split("<question>\n")[1].split("\n")[0]: p for p in prompts(llm_server)}
    assert "<reference_answer>\nREF-42\n</reference_answer>" in by_question["with"]
    assert "reference_answer" not in by_question["without"]


def test_context_column_grades_the_last_turn(llm_server, tmp_path):
    # The earlier assistant turn holds [1]; only the graded last turn's [4] may count.
    data = [{"instruction": "and then?", "response": "second [4]", "turns": [["first q", "first answer [1]"]]},
            {"instruction": "alone", "response": "solo [2]", "turns": None}]
    step = llm_judge(llm=judge(llm_server), name="grade", context_column="turns")
    _, rows = run_rows(data, step, tmp_path)
    assert rows["and then?"]["judge_score"] == 8.0 and rows["alone"]["judge_score"] == 4.0
    multi = next(p for p in prompts(llm_server) if "and then?" in p)
    assert '<user turn="1">\nfirst q\n</user>' in multi and '<user turn="2">\nand then?\n</user>' in multi


def test_bad_context_and_http_500_fail_only_their_rows(llm_server, tmp_path):
    data = [{"instruction": "ok", "response": ["fine [4]"], "turns": []},
            {"instruction": "down", "response": ["fine [4]", "[500] boom"], "turns": []},
            {"instruction": "odd", "response": ["fine [4]"], "turns": [["only a user turn"]]}]
    step = llm_judge(llm=judge(llm_server), name="grade", context_column="turns")
    result, rows = run_rows(data, step, tmp_path)
    assert rows["ok"]["judge_score"] == [8.0] and rows["ok"]["_error"] is None
    assert rows["down"]["_error"] == "grade: HTTP 500 internal failure"
    assert rows["odd"]["_error"].startswith("grade: column 'turns': turn_context[0] must be")
    assert result.stats["grade"]["rows_failed"] == 2 and len(llm_server.requests) == 3


def test_pairwise_both_orders_maps_winners_back(llm_server, tmp_path):
    data = [{"instruction": "a wins", "response_a": "x [4]", "response_b": "y [2]"},
            {"instruction": "b wins", "response_a": "x [1]", "response_b": "y [3]"},
            {"instruction": "equal", "response_a": "x [3]", "response_b": "y [3]"},
            {"instruction": "[pos] biased", "response_a": "x [1]", "response_b": "y [5]"}]
    result, rows = run_rows(data, pairwise_judge(llm=judge(llm_server), name="compare"), tmp_path)
    got = {q: (r["preference"], r["preference_value"], r["preference_consistent"]) for q, r in rows.items()}
    assert got == {"a wins": ("1", 1.0, True), "b wins": ("2", 2.0, True), "equal": ("tie", 1.5, True),
                   "[pos] biased": ("tie", 1.5, False)}
    assert rows["a wins"]["judge_raw"] == ["Compared. [[A]]", "Compared. [[B]]"]
    assert all(r["preference_errors"] == [None, None] and r["_error"] is None for r in rows.values())
    # Both orders of a row were asked: once with response_a shown first, once with it second.
    shown_first = [p.split("<answer_A>\n")[1].split("\n")[0] for p in prompts(llm_server) if "a wins" in p]
    assert sorted(shown_first) == ["x [4]", "y [2]"]
    assert len(llm_server.requests) == 8 and result.stats["compare"]["tokens"] > 0


def test_pairwise_one_order_sends_one_request_per_row(llm_server, tmp_path):
    data = [{"instruction": "b wins", "response_a": "x [1]", "response_b": "y [3]", "ref": "REF-7"},
            {"instruction": "[pos] biased", "response_a": "x [1]", "response_b": "y [5]", "ref": ""}]
    step = pairwise_judge(llm=judge(llm_server), name="compare", both_orders=False, reference_column="ref")
    _, rows = run_rows(data, step, tmp_path)
    assert rows["b wins"]["preference"] == "2" and rows["b wins"]["preference_consistent"] is None
    assert rows["[pos] biased"]["preference"] == "1"  # one order cannot see the judge's bias
    assert rows["b wins"]["judge_raw"] == ["Compared. [[B]]"] and rows["b wins"]["preference_errors"] == [None]
    sent = prompts(llm_server)
    assert len(sent) == 2 and sum("<reference_answer>\nREF-7\n" in p for p in sent) == 1
    assert sum("reference_answer" in p for p in sent) == 1


def test_pairwise_http_500_fails_its_row(llm_server, tmp_path):
    data = [{"instruction": "fine", "response_a": "x [4]", "response_b": "y [2]"},
            {"instruction": "down", "response_a": "x [500]", "response_b": "y"}]
    _, rows = run_rows(data, pairwise_judge(llm=judge(llm_server), name="compare"), tmp_path)
    assert rows["fine"]["preference"] == "1" and rows["fine"]["_error"] is None
    assert rows["down"]["_error"] == "compare: HTTP 500 internal failure"


def test_rerun_sends_no_request_again(llm_server, tmp_path):
    data = [{"instruction": "q", "response": "r [2]", "response_a": "x [1]", "response_b": "y [2]"}]
    for _ in range(2):
        source = from_rows(rows=data)
        source >> [llm_judge(llm=judge(llm_server), name="grade"), pairwise_judge(llm=judge(llm_server), name="compare")]
        run(source, tmp_path / "r", progress=False)
        assert len(llm_server.requests) == 3
    out = load_run(tmp_path / "r")
    assert out["grade"].to_list()[0]["judge_score"] == 4.0 and out["compare"].to_list()[0]["preference"] == "2"


@pytest.mark.parametrize("make, options, option", [
    (llm_judge, {"temperature": -1}, "temperature"),
    (llm_judge, {"max_new_tokens": 0}, "max_new_tokens"),
    (llm_judge, {"response_column": ""}, "response_column"),
    (llm_judge, {"reference_column": 3}, "reference_column"),
    (llm_judge, {"context_column": ["turns"]}, "context_column"),
    (pairwise_judge, {"both_orders": "yes"}, "both_orders"),
    (pairwise_judge, {"response_b_column": "response_a"}, "response_b_column"),
    (pairwise_judge, {"instruction_column": None}, "instruction_column"),
])
def test_bad_options_name_the_step_and_option(make, options, option):
    with pytest.raises(GraphError, match=rf"step 'j': option '{option}'"):
        make(name="j", **options)


def test_bad_llm_spec_names_the_step():
    with pytest.raises(GraphError, match="step 'j'"):
        pairwise_judge(llm={"backend": "nope"}, name="j")
