"""Judge replies that arrive but cannot be read: counted, asked again in the run
(`reask_unparsed`) or in a later one (`retry_unparsed` / `--retry-unparsed`), never silent.

The loopback judge garbles its verdict for a response marked `[garble]` when asked greedily
(temperature 0) and reads fine when sampled, as a real greedy judge repeats itself."""

import json

import pytest

from notos.errors import GraphError
from notos.pipeline import from_rows, load_run, run
from notos.tasks import critique, ultrafeedback_rating


def judge(server):
    return {"backend": "openai", "base_url": server.base_url, "model": "critic", "max_retries": 0}


ROWS = [{"instruction": f"q{i}", "generations": [f"a{i} [4]", f"b{i} [garble]" if i % 3 == 0 else f"b{i} [2]"]}
        for i in range(9)]  # rows 0, 3, 6 have one garbled critique each


def scores(out):
    return {r["instruction"]: r["overall_scores"] for r in load_run(out)["critique"].to_list()}


def test_unreadable_critiques_are_counted_not_failed(llm_server, tmp_path):
    result = run(from_rows(rows=ROWS) >> critique(llm=judge(llm_server), name="critique"), tmp_path / "r", progress=False)
    stats = result.stats["critique"]
    assert stats["rows_failed"] == 0 and stats["rows_unparsed"] == 3
    assert json.loads((tmp_path / "r" / "stats.json").read_text())["critique"]["rows_unparsed"] == 3
    assert scores(tmp_path / "r")["q3"] == [8.0, None]


def test_reask_unparsed_asks_only_the_unreadable_requests_again_sampled(llm_server, tmp_path):
    step = critique(llm=judge(llm_server), name="critique", reask_unparsed=2)
    result = run(from_rows(rows=ROWS) >> step, tmp_path / "r", progress=False)
    assert result.stats["critique"]["rows_unparsed"] == 0
    assert all(None not in s for s in scores(tmp_path / "r").values())
    # 18 critiques + one re-ask for each of the 3 garbled ones, at a raised temperature and its own seed.
    assert len(llm_server.requests) == 21
    again = llm_server.requests[18:]
    assert all(r["temperature"] >= 0.7 and r.get("seed") is not None for r in again)
    # How often to re-ask is not part of the fingerprint: changing it recomputes nothing.
    run(from_rows(rows=ROWS) >> critique(llm=judge(llm_server), name="critique", reask_unparsed=0), tmp_path / "r",
        progress=False)
    assert len(llm_server.requests) == 21


def test_retry_unparsed_asks_again_only_rows_that_could_not_be_read(llm_server, tmp_path):
    def pipeline():
        return from_rows(rows=ROWS) >> critique(llm=judge(llm_server), name="critique")

    run(pipeline(), tmp_path / "r", progress=False)
    before = scores(tmp_path / "r")
    assert len(llm_server.requests) == 18
    run(pipeline(), tmp_path / "r", progress=False, retry_failed=True)  # unreadable is not failed
    assert len(llm_server.requests) == 18
    result = run(pipeline(), tmp_path / "r", progress=False, retry_unparsed=True)
    # The 3 rows with an unreadable critique are asked again (both of their responses), sampled.
    assert len(llm_server.requests) == 18 + 6
    assert all(r["temperature"] >= 0.7 for r in llm_server.requests[18:])
    after = scores(tmp_path / "r")
    assert all(None not in s for s in after.values())
    assert {k: v for k, v in after.items() if k not in ("q0", "q3", "q6")} == \
        {k: v for k, v in before.items() if k not in ("q0", "q3", "q6")}
    assert result.stats["critique"]["rows_unparsed"] == 0 and result.stats["critique"]["rows_cached"] == 6
    assert "_reask" not in load_run(tmp_path / "r")["critique"].to_list()[0]
    run(pipeline(), tmp_path / "r", progress=False, retry_unparsed=True)  # nothing left to ask
    assert len(llm_server.requests) == 24


def test_garbled_rating_na_question_mark_is_unread_and_reasked(llm_server, tmp_path):
    rows = [{"instruction": "q", "generations": ["one [5]", "two [garble]"]}]
    step = ultrafeedback_rating(llm=judge(llm_server), name="rate", mode="text", aspects="honesty", shuffle=False)
    result = run(from_rows(rows=rows) >> step, tmp_path / "r", progress=False)
    row = load_run(tmp_path / "r")["rate"].to_list()[0]
    assert row["ratings"] == [5, None] and row["rating_errors"][1] and result.stats["rate"]["rows_unparsed"] == 1
    step = ultrafeedback_rating(llm=judge(llm_server), name="rate", mode="text", aspects="honesty", shuffle=False)
    run(from_rows(rows=rows) >> step, tmp_path / "r", progress=False, retry_unparsed=True)
    row = load_run(tmp_path / "r")["rate"].to_list()[0]
    assert row["ratings"] == [5, 3]  # read now ([garble] has no digit: rated 3)
    assert row["rating_errors"] == [None, None]


def test_cli_retry_unparsed_and_a_bad_reask_value(cli, llm_server, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "instruction": f"Say something about topic {i} [garble]"}) + "\n"
                            for i in range(4)))
    base = ("run", "ultrafeedback", "--input", data, "--llm-base-url", llm_server.base_url, "--no-progress",
            "--out", tmp_path / "uf")
    first = cli(*base)
    assert first.returncode == 0, first.stderr
    assert "warning: step 'critique' could not read" in first.stderr  # a judge that never parses is not silent
    totals = json.loads((tmp_path / "uf" / "stats.json").read_text())
    assert any(s.get("rows_unparsed") for name, s in totals.items() if name != "_totals")
    again = cli(*base, "--retry-unparsed")
    assert again.returncode == 0, again.stderr
    stats = json.loads((tmp_path / "uf" / "stats.json").read_text())
    assert all(not s.get("rows_unparsed") for name, s in stats.items() if name != "_totals")
    assert stats["rate"]["rows_in"] == 4 and stats["records"]["rows_in"] == 4  # asked again, down to the leaf
    records = load_run(tmp_path / "uf")["records"].to_list()
    for record in records:  # every rating and every critique score read now
        assert all(a["Rating"] not in (None, "") for c in record["completions"] for a in c["annotations"].values())
        assert all(c["overall_score"] is not None for c in record["completions"])
    bad = cli(*base, "--set", "critique.reask_unparsed=-1")
    assert bad.returncode == 2 and "reask_unparsed" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_bad_reask_value_is_a_graph_error():
    with pytest.raises(GraphError, match="reask_unparsed"):
        critique(name="critique", reask_unparsed="twice")


def test_retry_unparsed_reaches_the_leaf_after_the_judge(llm_server, tmp_path):
    """The leaf after the judge holds no unread mark of its own: it is redone where the judge was."""
    from notos.pipeline import keep_columns

    def pipeline():
        return (from_rows(rows=ROWS) >> critique(llm=judge(llm_server), name="critique")
                >> keep_columns(["instruction", "overall_scores"], name="dataset"))

    run(pipeline(), tmp_path / "r", progress=False)
    assert sum(None in r["overall_scores"] for r in load_run(tmp_path / "r")["dataset"].to_list()) == 3
    result = run(pipeline(), tmp_path / "r", progress=False, retry_unparsed=True)
    leaf = load_run(tmp_path / "r")["dataset"].to_list()
    assert len(leaf) == 9 and all(None not in r["overall_scores"] for r in leaf)
    assert result.stats["dataset"]["rows_in"] == 3 and result.stats["dataset"]["rows_cached"] == 6
