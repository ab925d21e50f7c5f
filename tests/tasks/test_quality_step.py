"""The quality filter (OpenBezoar's LLM as a human proxy) through the engine, against the
loopback judge: `[drop]` in a response gets DROP / score 2, anything else KEEP / score 8."""

import logging

import pytest

from notos.errors import GraphError
from notos.pipeline import filter_rows, from_rows, load_run, run
from notos.tasks.principles import quality_messages
from notos.tasks.quality_step import quality_filter


def judge(server):
    return {"backend": "openai", "base_url": server.base_url, "model": "synth", "max_retries": 0}


def pairs(*responses):
    return [{"row_id": f"p{i}", "instruction": f"question {i}", "generation": r} for i, r in enumerate(responses)]


def mute_some(monkeypatch):
    """A judge that ignores the format for responses marked `[mute]`: it answers without a verdict."""
    import notos.tasks.quality_step as step_module

    def messages(instruction, response, rubric=None):
        if "[mute]" in response:
            return [{"role": "user", "content": f"Is this good? {response}"}]
        return quality_messages(instruction, response, rubric)

    monkeypatch.setattr(step_module, "quality_messages", messages)


def test_verdicts_flag_every_row_and_a_later_filter_drops(llm_server, tmp_path):
    judged = quality_filter(llm=judge(llm_server), name="judge")
    pipe = from_rows(rows=pairs("A fine answer.", "Off topic [drop]", "Another fine one.")) >> judged
    pipe >> filter_rows("quality_keep", "==", True, name="kept")
    result = run(pipe, tmp_path / "r", progress=False)
    out = load_run(tmp_path / "r")
    kept = out["kept"].to_list()
    assert [r["row_id"] for r in kept] == ["p0", "p2"]
    assert kept[0]["quality_keep"] is True and kept[0]["quality_score"] == 8
    assert kept[0]["quality_reason"] == "clear, correct and complete." and kept[0]["quality_model"] == "synth"
    assert kept[0]["quality_error"] is None and kept[0]["_error"] is None
    assert result.stats["judge"]["rows_out"] == 3 and result.stats["judge"]["tokens"] > 0
    assert list(out) == ["kept"]  # only leaves are stored as data; the judge's flags travel with the kept rows
    body = llm_server.requests[1]
    assert body["messages"][0]["role"] == "system" and body["temperature"] == 0.0


def test_drop_flags_are_stored_when_the_filter_is_a_leaf(llm_server, tmp_path):
    run(from_rows(rows=pairs("Fine.", "Off topic [drop]")) >> quality_filter(llm=judge(llm_server)), tmp_path / "r", progress=False)
    rows = load_run(tmp_path / "r")["quality_filter"].to_list()
    assert [(r["quality_keep"], r["quality_score"]) for r in rows] == [(True, 8), (False, 2)]
    assert rows[1]["quality_reason"] == "the response does not address the instruction." and rows[1]["_error"] is None


def test_drop_true_removes_drop_rows_keeps_unjudged_ones_and_logs(llm_server, tmp_path, monkeypatch, caplog):
    mute_some(monkeypatch)
    caplog.set_level(logging.INFO, logger="notos")
    data = pairs("Fine.", "Off topic [drop]", "Rambling [drop]", "Unclear [mute]", "Good too.")
    result = run(from_rows(rows=data) >> quality_filter(llm=judge(llm_server), drop=True), tmp_path / "r", progress=False)
    rows = {r["row_id"]: r for r in load_run(tmp_path / "r")["quality_filter"].to_list()}
    assert sorted(rows) == ["p0", "p3", "p4"]
    assert rows["p3"]["quality_keep"] is None and rows["p3"]["quality_error"] == "no verdict or score found"
    assert result.stats["quality_filter"]["rows_out"] == 3 and result.stats["quality_filter"]["rows_failed"] == 0
    assert ("quality_filter: dropped 2 of 5 rows judged DROP; most common reasons: "
            "2 x the response does not address the instruction.") in caplog.text


def test_an_unreadable_verdict_never_fails_the_row(llm_server, tmp_path, monkeypatch):
    mute_some(monkeypatch)
    run(from_rows(rows=pairs("Unclear [mute]")) >> quality_filter(llm=judge(llm_server)), tmp_path / "r", progress=False)
    [row] = load_run(tmp_path / "r")["quality_filter"].to_list()
    assert row["_error"] is None and row["quality_keep"] is None and row["quality_score"] is None
    assert row["quality_error"] == "no verdict or score found" and row["quality_reason"].startswith("Answer to: Is this good?")


def test_min_score_decides_by_the_score(llm_server, tmp_path):
    run(from_rows(rows=pairs("Fine.")) >> quality_filter(llm=judge(llm_server), min_score=9), tmp_path / "r", progress=False)
    [row] = load_run(tmp_path / "r")["quality_filter"].to_list()
    assert row["quality_keep"] is False and row["quality_score"] == 8


def test_a_failed_request_fails_only_its_row_and_a_rerun_sends_nothing(llm_server, tmp_path):
    pipe = lambda: from_rows(rows=pairs("Fine.", "[500] broken", "Off [drop]")) >> quality_filter(llm=judge(llm_server), name="judge")  # noqa: E731
    result = run(pipe(), tmp_path / "r", progress=False)
    rows = {r["row_id"]: r for r in load_run(tmp_path / "r")["judge"].to_list()}
    assert rows["p1"]["_error"] == "judge: HTTP 500 internal failure" and rows["p1"].get("quality_keep") is None
    assert rows["p0"]["quality_keep"] is True and rows["p2"]["quality_keep"] is False
    assert result.stats["judge"]["rows_failed"] == 1
    run(pipe(), tmp_path / "r", progress=False)
    assert len(llm_server.requests) == 3


@pytest.mark.parametrize("options, message", [
    ({"min_score": 0}, "option 'min_score'"),
    ({"min_score": 7.5}, "option 'min_score'"),
    ({"drop": "yes"}, "option 'drop'"),
    ({"rubric": ["x"]}, "option 'rubric'"),
    ({"max_new_tokens": 0}, "option 'max_new_tokens'"),
    ({"llm": {"backend": "nope"}}, "unknown backend 'nope'"),
])
def test_bad_options(options, message):
    with pytest.raises(GraphError, match=f"step 'q': .*{message}"):
        quality_filter(name="q", **options)
