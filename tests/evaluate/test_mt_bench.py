"""MT-Bench: reading FastChat's files, the figures, bad input, and a real run on the embedded model.
(The exact scores, references, resume and failures are checked against the loopback server in
tests/evaluate/test_eval_mt_bench_server.py.)"""

import json

import pytest

from notos.data.mt_bench import Question, load_questions, load_references
from notos.errors import NotosError
from notos.evaluate.mt_bench import reference_for, select_questions, summarize

GOOD = {"question_id": 1, "category": "writing", "turns": ["a", "b"]}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def verdict(qid, turn, score, category=None):
    return {"question_id": qid, "turn": turn, "score": score, "category": category}


def test_summary_means_leave_out_unreadable_verdicts():
    questions = [Question(1, "math", ("q", "q")), Question(2, "math", ("q", "q")), Question(3, "writing", ("q", "q"))]
    judgments = [verdict(1, 1, 9), verdict(1, 2, 3), verdict(2, 1, -1), verdict(2, 2, 7.5),
                 verdict(3, 1, 4), verdict(3, 2, -1),
                 verdict(3, 1, 6)]  # a later verdict for the same turn replaces the earlier one
    answers = [{"question_id": q} for q in (1, 2, 3)]
    s = summarize(answers, judgments, questions, questions + [Question(4, "stem", ("q", "q"))])
    # Scored: math t1 9, math t2 3 and 7.5, writing t1 6.
    assert s["turn_1"] == pytest.approx((9 + 6) / 2)
    assert s["turn_2"] == pytest.approx((3 + 7.5) / 2)
    assert s["overall"] == pytest.approx((9 + 3 + 7.5 + 6) / 4)
    assert s["per_category"] == pytest.approx({"writing": 6.0, "math": (9 + 3 + 7.5) / 3})
    assert s["per_category_turn"]["writing"] == {"turn_1": 6.0, "turn_2": None}
    assert (s["n_questions"], s["n_judged"], s["n_scored"], s["n_failed_to_parse"]) == (3, 6, 4, 2)
    assert (s["n_unjudged"], s["n_unanswered"]) == (0, 1)


def test_summary_takes_categories_from_the_records_when_the_file_lacks_them():
    s = summarize([{"question_id": 9}], [verdict(9, 1, 8, "stem"), verdict(9, 2, 2, "stem")], [])
    assert s["per_category"] == {"stem": 5.0} and s["n_unjudged"] == 0


def test_references_only_for_math_reasoning_coding_file_first():
    refs = {"1": ("file one", "file two"), "2": ("only one",), "3": ("r1", "r2")}
    math = Question(1, "math", ("q1", "q2"), reference=("inline one", "inline two"))
    assert reference_for(math, refs, 1) == "file one" and reference_for(math, refs, 2) == "file two"
    assert reference_for(Question(1, "math", ("q", "q"), ("x", "y")), {}, 2) == "y"  # the question's own field
    assert reference_for(Question(2, "coding", ("q", "q")), refs, 2) is None  # no second turn in the reference
    assert reference_for(Question(3, "writing", ("q", "q"), ("x", "y")), refs, 1) is None
    assert reference_for(Question(5, "reasoning", ("q", "q"), ("", "")), {}, 1) is None  # empty is none


def test_real_files_read(shared_data):
    questions = load_questions(shared_data / "mt_bench" / "question.jsonl")
    refs = load_references(shared_data / "mt_bench" / "reference_answer_gpt-4.jsonl")
    assert len(questions) == 80 and len({q.category for q in questions}) == 8
    assert len(refs) == 30
    needing = [q for q in questions if q.category in ("math", "reasoning", "coding")]
    assert len(needing) == 30 and all(q.key in refs for q in needing)
    q116 = next(q for q in questions if q.question_id == 116)
    assert reference_for(q116, refs, 1).startswith("We have two equations:")  # the file, not the inline "0\n\nVery simple"
    assert [q.question_id for q in select_questions(questions, "116, 81", None)] == [81, 116]
    # A limit is spread over the categories (the file is sorted by category: its first 3 are all writing).
    assert [q.question_id for q in select_questions(questions, None, 3)] == [81, 91, 101]
    eight = select_questions(questions, None, 8)
    assert len({q.category for q in eight}) == 8
    ten = select_questions(questions, None, 10)
    assert [q.question_id for q in ten] == [81, 82, 91, 92, 101, 111, 121, 131, 141, 151]
    assert [q.question_id for q in select_questions(questions, "81, 82, 83, 91", 3)] == [81, 82, 91]


def test_select_unknown_id_is_an_error():
    with pytest.raises(NotosError, match="--question-ids: no question with id 99"):
        select_questions([Question(1, "writing", ("a", "b"))], "1,99")


BAD_QUESTIONS = [
    ("not json", ["{\"question_id\": 1,"], "line 1 is not valid JSON"),
    ("no turns", [{"question_id": 1, "category": "writing"}], "question 1 (id 1): 'turns' must be a list of 2"),
    ("one turn", [GOOD, {"question_id": 2, "category": "math", "turns": ["only one"]}], "question 2 (id 2): 'turns' must be a list of 2"),
    ("empty turn", [{"question_id": 1, "category": "math", "turns": ["x", " "]}], "'turns' must be a list of 2 non-empty strings"),
    ("no category", [{"question_id": 1, "turns": ["a", "b"]}], "'category' must be a non-empty string"),
    ("no id", [{"category": "math", "turns": ["a", "b"]}], "question 1: 'question_id' must be an integer or a string"),
    ("twice", [GOOD, GOOD], "question 2: question_id 1 appears twice"),
    ("a list", ["[1, 2]"], "line 1 is a JSON list, expected an object"),
]


@pytest.mark.parametrize("case, rows, message", BAD_QUESTIONS, ids=[c[0] for c in BAD_QUESTIONS])
def test_bad_question_files_are_one_line_errors(cli, tmp_path, case, rows, message):
    questions = write_jsonl(tmp_path / "question.jsonl", rows)
    done = cli("eval", "mt-bench", "--model", "embedded", "--judge", "embedded", "--questions", questions,
               "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert str(questions) in done.stderr and message in done.stderr
    assert not (tmp_path / "out").exists()  # nothing started


def test_other_bad_inputs_are_one_line_errors(cli, tmp_path):
    questions = write_jsonl(tmp_path / "question.jsonl", [GOOD])
    base = ("eval", "mt-bench", "--model", "embedded", "--judge", "embedded", "--out", tmp_path / "out")
    cases = [
        (("--questions", tmp_path / "missing.jsonl"), "--questions", "no such file"),
        (("--questions", questions, "--references", write_jsonl(tmp_path / "r.jsonl", [{"question_id": 1, "choices": []}])),
         "r.jsonl: answer 1 (id 1): expected choices[0].turns", ""),
        (("--questions", questions, "--question-ids", "1,5"), "--question-ids", "no question with id 5"),
        (("--questions", questions, "--judge", "nonsense:x"), "cannot read spec", "nonsense:x"),
        (("--model", "embedded"), "--questions", "Missing option"),
    ]
    for args, first, second in cases:
        done = cli(*base, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and first in done.stderr and second in done.stderr, done.stderr


@pytest.mark.slow  # the embedded model or lm-eval on it
def test_embedded_model_as_model_and_judge_end_to_end(cli, shared_data, tmp_path):
    """The real thing, small: SmolLM2-135M answers 3 real questions and judges them. Its verdicts
    are whatever it writes in 24 tokens: a score 1-10, or -1 when none can be read."""
    data = shared_data / "mt_bench"
    out = tmp_path / "mt"
    done = cli("eval", "mt-bench", "--model", "embedded", "--judge", "embedded", "--questions", data / "question.jsonl",
               "--references", data / "reference_answer_gpt-4.jsonl", "--question-ids", "81,116,141",
               "--max-new-tokens", "24", "--judge-max-new-tokens", "24", "--out", out, "--no-progress", timeout=600)
    assert done.returncode == 0, done.stderr
    assert "MT-Bench: SmolLM2-135M-Instruct judged by SmolLM2-135M-Instruct" in done.stdout

    answers = [json.loads(line) for line in (out / "model_answer.jsonl").read_text().splitlines()]
    assert sorted(a["question_id"] for a in answers) == [81, 116, 141]
    for a in answers:
        assert set(a) == {"question_id", "answer_id", "model_id", "choices", "tstamp"}
        assert a["model_id"] == "SmolLM2-135M-Instruct" and a["choices"][0]["index"] == 0
        assert len(a["choices"][0]["turns"]) == 2 and all(isinstance(t, str) for t in a["choices"][0]["turns"])

    judgments = [json.loads(line) for line in (out / "model_judgment.jsonl").read_text().splitlines()]
    assert sorted((j["question_id"], j["turn"]) for j in judgments) == [(q, t) for q in (81, 116, 141) for t in (1, 2)]
    by_id = {a["question_id"]: a["choices"][0]["turns"] for a in answers}
    questions = {q["question_id"]: q for q in map(json.loads, (data / "question.jsonl").read_text().splitlines())}
    for j in judgments:
        assert {"question_id", "model", "judge", "user_prompt", "judgment", "score", "turn", "tstamp"} <= set(j)
        assert j["model"] == "SmolLM2-135M-Instruct" and j["judge"][0] == "SmolLM2-135M-Instruct"
        assert j["score"] == -1 or 1 <= j["score"] <= 10
        answer_turns = by_id[j["question_id"]]
        assert answer_turns[j["turn"] - 1].strip() in j["user_prompt"]
        if j["turn"] == 2:  # graded with the first exchange in view
            assert questions[j["question_id"]]["turns"][0] in j["user_prompt"] and answer_turns[0].strip() in j["user_prompt"]
    ref = {j["turn"]: j["user_prompt"] for j in judgments if j["question_id"] == 116}
    assert "<reference_answer>" in ref[1] and "<reference_answer>" in ref[2]  # math: GPT-4's reference shown
    assert all("<reference_answer>" not in j["user_prompt"] for j in judgments if j["question_id"] != 116)

    summary = json.loads((out / "summary.json").read_text())
    failed = sum(j["score"] == -1 for j in judgments)
    assert summary["n_failed_to_parse"] == failed and summary["n_judged"] == 6 and summary["n_scored"] == 6 - failed
    scored = [j["score"] for j in judgments if j["score"] != -1]
    assert summary["overall"] == (pytest.approx(sum(scored) / len(scored)) if scored else None)
    assert set(summary["per_category"]) == {"writing", "math", "stem"}
    assert (out / "config.json").exists() and "<h1>MT-Bench</h1>" in (out / "report.html").read_text()
