"""`notos eval mt-bench` against the loopback server, as both the model and the judge.

The fake model answers "Answer to: <last user message>", so an answer carries its turn's `[d]`
marker; the fake judge then gives `[[2d]]` (and no verdict for `[x]`). Every score below is
therefore known before the run: 2 x the digit written in the question's turn.
"""

import json

import pytest

from notos.evaluate.mt_bench import run_mt_bench

QUESTIONS = [
    {"question_id": 1, "category": "writing", "turns": ["Write a poem [3]", "Shorter now [4]"]},
    {"question_id": 2, "category": "math", "turns": ["Compute 2+2 [2]", "Now 3+3 [5]"]},
    {"question_id": 3, "category": "reasoning", "turns": ["Think it over [1]", "[x] and then?"],
     "reference": ["INLINE-R1", "INLINE-R2"]},
    {"question_id": 4, "category": "stem", "turns": ["Explain gravity [4]", "Edge cases [2]"]},
    {"question_id": 5, "category": "roleplay", "turns": ["Be a pirate [3]", "Sing [3]"]},
]
REFERENCES = [
    {"question_id": 2, "model_id": "gpt-4", "choices": [{"index": 0, "turns": ["REF-M1", "REF-M2"]}]},
    {"question_id": 5, "model_id": "gpt-4", "choices": [{"index": 0, "turns": ["REF-ROLE1", "REF-ROLE2"]}]},
]
# (question_id, turn) -> 2 x the digit in that turn; -1: the judge's verdict cannot be read.
EXPECTED = {(1, 1): 6, (1, 2): 8, (2, 1): 4, (2, 2): 10, (3, 1): 2, (3, 2): -1,
            (4, 1): 8, (4, 2): 4, (5, 1): 6, (5, 2): 6}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def spec(server, name):
    return {"backend": "openai", "base_url": server.base_url, "model": name, "max_retries": 0}


@pytest.fixture
def files(tmp_path):
    return write_jsonl(tmp_path / "question.jsonl", QUESTIONS), write_jsonl(tmp_path / "refs.jsonl", REFERENCES)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def is_judge(body):
    return body["messages"][0]["role"] == "system"


def test_scores_means_references_and_turn_two_context(llm_server, files, tmp_path):
    questions, refs = files
    out = tmp_path / "mt"
    summary = run_mt_bench(spec(llm_server, "my-model"), spec(llm_server, "my-judge"), questions, out,
                           references=refs, progress=False)

    answers = {r["question_id"]: r for r in read(out / "model_answer.jsonl")}
    assert sorted(answers) == [1, 2, 3, 4, 5]
    for q in QUESTIONS:
        record = answers[q["question_id"]]
        assert record["model_id"] == "my-model" and isinstance(record["tstamp"], float) and record["answer_id"]
        assert record["choices"] == [{"index": 0, "turns": [f"Answer to: {q['turns'][0]}", f"Answer to: {q['turns'][1]}"]}]

    judgments = read(out / "model_judgment.jsonl")
    assert {(j["question_id"], j["turn"]): j["score"] for j in judgments} == EXPECTED
    assert all(j["model"] == "my-model" and j["judge"][0] == "my-judge" for j in judgments)
    failed = next(j for j in judgments if j["score"] == -1)
    assert failed["judgment"] == "I cannot decide." and failed["parse_error"] == "no [[N]] verdict"

    # The means, by hand from EXPECTED: -1 left out.
    assert summary["turn_1"] == pytest.approx((6 + 4 + 2 + 8 + 6) / 5)
    assert summary["turn_2"] == pytest.approx((8 + 10 + 4 + 6) / 4)
    assert summary["overall"] == pytest.approx(54 / 9)
    assert summary["per_category"] == pytest.approx({"writing": 7.0, "roleplay": 6.0, "reasoning": 2.0, "math": 7.0, "stem": 6.0})
    assert list(summary["per_category"]) == ["writing", "roleplay", "reasoning", "math", "stem"]  # FastChat's order
    assert summary["per_category_turn"]["reasoning"] == {"turn_1": 2.0, "turn_2": None}
    assert (summary["n_questions"], summary["n_judged"], summary["n_scored"], summary["n_failed_to_parse"]) == (5, 10, 9, 1)
    assert summary["model"] == "my-model" and summary["judge"] == "my-judge"
    assert json.loads((out / "summary.json").read_text()) == summary
    config = json.loads((out / "config.json").read_text())
    assert config["model_id"] == "my-model" and config["judge_id"] == "my-judge" and config["temperature"]["stem"] == 0.1
    report = (out / "report.html").read_text()
    assert "<img" in report and "Per category" in report and "I cannot decide." in report

    model_requests = [b for b in llm_server.requests if not is_judge(b)]
    judge_requests = [b for b in llm_server.requests if is_judge(b)]
    assert len(model_requests) == 10 and len(judge_requests) == 10
    # FastChat's temperature per category; judges are greedy.
    first_turn = {q["turns"][0]: q["category"] for q in QUESTIONS}
    temperature = {"writing": 0.7, "roleplay": 0.7, "math": 0.0, "reasoning": 0.0, "stem": 0.1}
    for body in model_requests:
        assert body["temperature"] == temperature[first_turn[body["messages"][0]["content"]]]
    assert {b["temperature"] for b in judge_requests} == {0.0}
    # Turn 2 sees the first exchange; all turn-1 requests went before any turn-2 one.
    turn_two = [b for b in model_requests if len(b["messages"]) == 3]
    assert len(turn_two) == 5
    for body in turn_two:
        q = next(q for q in QUESTIONS if q["turns"][0] == body["messages"][0]["content"])
        assert body["messages"] == [{"role": "user", "content": q["turns"][0]},
                                    {"role": "assistant", "content": f"Answer to: {q['turns'][0]}"},
                                    {"role": "user", "content": q["turns"][1]}]
    order = [len(b["messages"]) for b in model_requests]
    assert order == [1] * 5 + [3] * 5

    # References: only math/reasoning/coding, from the file first, else the question's own field.
    prompt = {(j["question_id"], j["turn"]): j["user_prompt"] for j in judgments}
    assert "<reference_answer>\nREF-M1\n</reference_answer>" in prompt[2, 1]
    assert "<reference_answer>\nREF-M2\n</reference_answer>" in prompt[2, 2] and "REF-M1" not in prompt[2, 2]
    assert "INLINE-R1" in prompt[3, 1] and "INLINE-R2" in prompt[3, 2]
    for key in [(1, 1), (1, 2), (4, 1), (4, 2), (5, 1), (5, 2)]:
        assert "reference_answer" not in prompt[key]
    assert not any("REF-ROLE" in b["messages"][-1]["content"] for b in judge_requests)
    assert {j["judge"][1] for j in judgments if j["question_id"] == 2} == {"notos-single-ref", "notos-single-ref-multi-turn"}
    # Turn 2 is judged with the first exchange as context, turn 1 without.
    assert '<user turn="1">\nWrite a poem [3]\n</user>' in prompt[1, 2]
    assert '<assistant turn="1">\nAnswer to: Write a poem [3]\n</assistant>' in prompt[1, 2]
    assert '<assistant turn="2" graded="yes">\nAnswer to: Shorter now [4]\n</assistant>' in prompt[1, 2]
    assert "<question>\nWrite a poem [3]\n</question>" in prompt[1, 1] and "turn=" not in prompt[1, 1]


def test_resume_is_the_run_store(llm_server, files, tmp_path):
    questions, refs = files
    out = tmp_path / "mt"
    first = run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, out, references=refs, progress=False)
    answers_text, judgments_text = (out / "model_answer.jsonl").read_text(), (out / "model_judgment.jsonl").read_text()
    assert len(llm_server.requests) == 20
    assert (out / "run" / "manifest.json").exists()  # the engine's run store

    again = run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, out, references=refs, progress=False)
    assert len(llm_server.requests) == 20  # nothing asked again
    assert again == first
    assert (out / "model_answer.jsonl").read_text() == answers_text  # answer_id and tstamp kept
    assert (out / "model_judgment.jsonl").read_text() == judgments_text

    # The FastChat files are written from the run: lines dropped from them come back, asking nothing.
    write_jsonl(out / "model_answer.jsonl", [r for r in read(out / "model_answer.jsonl") if r["question_id"] != 4])
    write_jsonl(out / "model_judgment.jsonl", [r for r in read(out / "model_judgment.jsonl") if r["question_id"] not in (2, 4)])
    third = run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, out, references=refs, progress=False)
    assert len(llm_server.requests) == 20 and third == first
    assert (out / "model_answer.jsonl").read_text() == answers_text
    assert (out / "model_judgment.jsonl").read_text() == judgments_text

    # Another judge budget re-judges every turn and keeps every answer.
    run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, out, references=refs, progress=False,
                 judge_max_new_tokens=64)
    new = llm_server.requests[20:]
    assert len(new) == 10 and all(is_judge(b) and b["max_tokens"] == 64 for b in new)
    assert (out / "model_answer.jsonl").read_text() == answers_text
    # Without the references file the judges run again (references are their input); no answer is asked again.
    fifth = run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, out, progress=False, judge_max_new_tokens=64)
    new = llm_server.requests[30:]
    assert len(new) == 10 and all(is_judge(b) for b in new)
    assert fifth["n_judged"] == 10 and (out / "model_answer.jsonl").read_text() == answers_text


def test_failed_requests_are_counted_and_retried_on_the_next_run(llm_server, tmp_path):
    # The first request with each text gets HTTP 500 (and no retries): turn 1's generation on the
    # first run, then both verdicts (their prompts hold the marked question) on the second.
    questions = write_jsonl(tmp_path / "q.jsonl", [
        {"question_id": 7, "category": "writing", "turns": ["Flaky [500x1] [2]", "Again [3]"]},
        {"question_id": 8, "category": "humanities", "turns": ["Fine [1]", "Also fine [2]"]},
    ])
    out = tmp_path / "mt"
    first = run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, out, progress=False)
    assert (first["n_questions"], first["n_unanswered"], first["n_judged"], first["n_unjudged"]) == (1, 1, 2, 0)
    assert first["per_category"] == {"humanities": 3.0}

    second = run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, out, progress=False)
    assert (second["n_questions"], second["n_unanswered"], second["n_judged"], second["n_unjudged"]) == (2, 0, 2, 2)

    third = run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, out, progress=False)
    assert (third["n_questions"], third["n_unanswered"], third["n_judged"], third["n_unjudged"]) == (2, 0, 4, 0)
    assert third["per_category"] == {"writing": 5.0, "humanities": 3.0}
    assert third["overall"] == pytest.approx((4 + 6 + 2 + 4) / 4)
    assert len(read(out / "model_answer.jsonl")) == 2 and len(read(out / "model_judgment.jsonl")) == 4


def test_malformed_verdicts_are_counted_never_crash(llm_server, tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", [
        {"question_id": 1, "category": "coding", "turns": ["[x] a", "[x] b"]},
        {"question_id": 2, "category": "extraction", "turns": ["no digit here", "[x] c"]},
    ])
    summary = run_mt_bench(spec(llm_server, "m"), spec(llm_server, "j"), questions, tmp_path / "mt", progress=False)
    scores = {(j["question_id"], j["turn"]): j["score"] for j in read(tmp_path / "mt" / "model_judgment.jsonl")}
    assert scores == {(1, 1): -1, (1, 2): -1, (2, 1): 5, (2, 2): -1}  # the fake judge's 5: no digit
    assert (summary["n_judged"], summary["n_failed_to_parse"], summary["n_scored"]) == (4, 3, 1)
    assert summary["overall"] == summary["turn_1"] == 5.0 and summary["turn_2"] is None
    assert summary["per_category"] == {"coding": None, "extraction": 5.0}


def test_cli_end_to_end_model_name_and_resume_guard(llm_server, files, cli, tmp_path):
    questions, refs = files
    out = tmp_path / "mt"
    args = ("eval", "mt-bench", "--questions", questions, "--references", refs, "--out", out, "--no-progress")
    done = cli(*args, "--model", llm_server.base_url, "--judge", llm_server.base_url, "--model-name", "zephyr-x",
               "--question-ids", "1,2", "--max-new-tokens", "64")
    assert done.returncode == 0, done.stderr
    assert "overall" in done.stdout and "7.00" in done.stdout  # (6 + 8 + 4 + 10) / 4
    assert "MT-Bench: zephyr-x judged by fake-model" in done.stdout
    assert {r["model_id"] for r in read(out / "model_answer.jsonl")} == {"zephyr-x"}
    assert all(b["max_tokens"] == 64 for b in llm_server.requests if not is_judge(b))
    assert len(llm_server.requests) == 8

    # The same folder with another judge is refused (a resume never mixes two judges).
    other = cli(*args, "--model", llm_server.base_url, "--judge", "embedded")
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and "--judge" in other.stderr and str(out) in other.stderr
    # The same command again: nothing to do, the same figures.
    again = cli(*args, "--model", llm_server.base_url, "--judge", llm_server.base_url, "--question-ids", "1,2")
    assert again.returncode == 0, again.stderr
    assert len(llm_server.requests) == 8 and "7.00" in again.stdout
