"""The audit on hand-built completions whose flags are worked out by hand, the rationale lexicon on
phrases with and without negation, and the synthetic full-size data generator at a small size."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from notos.curate import lexicon
from notos.curate.audit import audit
from notos.data.completions import completions_from_rows
from notos.errors import DataError, NotosError

ROOT = Path(__file__).resolve().parents[2]
NA = "N/A"
ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
NEUTRAL = "The text is about the topic."  # no lexicon cue at all


def completion(pid, k, overall, ratings, *, response=None, rationales=None, model=None, source="src"):
    """One completion; ratings is 4 values (number, NA or None), rationales {aspect: text}."""
    row = {"prompt_id": pid, "prompt": f"prompt {pid}", "source": source, "completion_index": k,
           "model": model or f"model-{k}", "response": response or f"answer {pid}/{k}", "overall_score": overall}
    for aspect, rating in zip(ASPECTS, ratings):
        row[f"rating_{aspect}"] = None if rating == NA else rating
        row[f"na_{aspect}"] = rating == NA
        row[f"rationale_{aspect}"] = (rationales or {}).get(aspect, NEUTRAL)
    return row


def run(rows, **options):
    return audit(completions_from_rows(rows), **options)


def by_key(flags: pa.Table) -> dict:
    return {(r["prompt_id"], r["completion_index"]): r for r in flags.to_pylist()}


# --- critique vs aspect ratings --------------------------------------------------------------

def test_ten_over_ones_is_flagged_with_both_numbers():
    flags, summary = run([completion("p", 0, 10, [1, 1, 2, 1]), completion("q", 0, 10, [1, 2, 2, 1])])
    rows = by_key(flags)
    hit = rows[("p", 0)]
    assert hit["flags"] == ["critique_disagrees"]
    assert hit["aspect_mean"] == 1.25
    assert hit["critique_gap"] == pytest.approx(1 - 0.0625)  # (10-1)/9 - (1.25-1)/4
    assert "critique 10.0" in hit["reasons"][0] and "aspect mean 1.25" in hit["reasons"][0]
    assert "critique 10.0 vs aspect mean 1.50" in rows[("q", 0)]["reasons"][0]
    assert summary["flag_counts"]["critique_disagrees"] == 2


def test_agreeing_scores_are_not_flagged():
    rows = [
        completion("a", 0, 10, [5, 5, 5, 5]),      # gap 0
        completion("a", 1, 1, [1, 1, 1, 1]),       # gap 0
        completion("a", 2, 5.5, [3, 3, 3, 3]),     # 0.5 vs 0.5
        completion("a", 3, 8, [3, 3, 3, 3]),       # 0.778 vs 0.5: gap 0.28 < 0.5
    ]
    flags, summary = run(rows)
    assert flags.num_rows == 0
    assert summary["flagged"] == 0 and summary["flag_counts"]["critique_disagrees"] == 0
    # The same 8-vs-3 completion is flagged once the gap allowed is below 0.28.
    flags, _ = run(rows, max_gap=0.25)
    assert list(by_key(flags)) == [("a", 3)]


def test_gap_boundary_and_the_classic_rule():
    rows = [
        completion("b", 0, 10, [3, 3, 3, 3]),      # gap exactly 0.5: flagged (>= max_gap)
        completion("b", 1, 9, [2, 2, 2, 2]),       # gap 0.64, and the classic overall >= 9 with mean <= 2
        completion("b", 2, 9, [2, 2, 3, 2]),       # mean 2.25: gap 0.58, not classic
    ]
    assert set(by_key(run(rows)[0])) == {("b", 0), ("b", 1), ("b", 2)}
    # A wide max_gap leaves only the classic case; "classic" alone gives the same; "none" nothing.
    assert set(by_key(run(rows, max_gap=0.9)[0])) == {("b", 1)}
    assert set(by_key(run(rows, critique_rule="classic")[0])) == {("b", 1)}
    assert run(rows, critique_rule="none")[0].num_rows == 0
    # The classic thresholds are options too.
    assert set(by_key(run(rows, max_gap=0.9, low_mean=2.25)[0])) == {("b", 1), ("b", 2)}
    assert run(rows, max_gap=0.9, high_overall=10)[0].num_rows == 0


def test_na_aspects_leave_the_mean_and_only_inform():
    rows = [
        completion("n", 0, 10, [NA, NA, NA, NA]),  # no mean: no critique flag whatever the score
        completion("n", 1, 10, [5, NA, 5, 5]),     # mean of three 5s = 5: agrees with 10
        completion("n", 2, 10, [1, NA, 1, 1]),     # mean 1 (N/A not counted as anything)
    ]
    flags, summary = run(rows)
    assert list(by_key(flags)) == [("n", 2)]       # N/A alone does not put a row in the table
    assert by_key(flags)[("n", 2)]["flags"] == ["critique_disagrees", "na_rating"]
    assert by_key(flags)[("n", 2)]["reasons"][1] == "honesty: rated N/A"
    every = by_key(run(rows, all_rows=True)[0])
    assert every[("n", 0)]["aspect_mean"] is None and every[("n", 0)]["critique_gap"] is None
    assert every[("n", 0)]["flags"] == ["na_rating"] * 4 and every[("n", 0)]["severity"] == 0
    assert every[("n", 1)]["aspect_mean"] == 5 and every[("n", 1)]["severity"] == 0
    assert summary["flag_counts"] == {"critique_disagrees": 1, "rating_contradicts_rationale": 0,
                                      "missing_rating": 0, "missing_critique_score": 0, "duplicate_response": 0,
                                      "na_rating": 3}
    assert summary["na_by_aspect"] == {"instruction_following": 1, "honesty": 3, "truthfulness": 1, "helpfulness": 1}
    assert summary["flagged"] == 1


def test_missing_rating_is_not_na():
    flags, summary = run([completion("m", 0, None, [4, None, 4, NA])])
    row = by_key(flags)[("m", 0)]
    assert row["flags"] == ["missing_rating", "na_rating"]
    assert row["reasons"] == ["honesty: no rating", "helpfulness: rated N/A"]
    assert row["severity"] == 1.0  # no overall score: no gap; one finding that counts
    assert summary["missing_by_aspect"]["honesty"] == 1


# --- rating vs its own rationale -------------------------------------------------------------

@pytest.mark.parametrize("text, reading", [
    ("The text contains severe hallucinations and is completely wrong.", -1),
    ("The answer is incorrect and misleading.", -1),
    ("The response is not accurate.", -1),
    ("The answer lacks accuracy.", -1),
    ("The response does not address the question.", -1),
    ("The response doesn't follow the instruction.", -1),
    ("The response is accurate and comprehensive.", 1),
    ("The text fully aligns with the task goal.", 1),
    ("The text is not incorrect.", 1),
    ("There is no hallucination.", 1),
    ("The answer is free of hallucinations.", 1),
    ("The answer is free of hallucinations and accurate.", 1),
    ("No errors or hallucinations.", 1),
    ("The model doesn't provide any misleading information.", 1),
    ("Not only accurate but also comprehensive.", 1),
    ("The text has minor errors.", 0),                  # softened: what a 4 looks like
    ("Mostly truthful, with a slight hallucination.", 0),
    ("It is correct, but it fails to mention the date.", 0),  # one of each
    (NEUTRAL, 0),
    ("", 0),
    (None, 0),
])
def test_lexicon_reading(text, reading):
    texts = pa.array([text], pa.string())
    assert lexicon.reads(texts).tolist() == [reading]
    # The fast one-sided paths the audit uses agree with the full count.
    assert lexicon.reads_negative(texts).tolist() == [reading < 0]
    assert lexicon.reads_positive(texts).tolist() == [reading > 0]


def test_lexicon_counts_and_first_cue():
    texts = pa.array(["Severe hallucinations, wrong.", "No errors or hallucinations, but not accurate."])
    positive, negative = lexicon.polarity(texts)
    assert positive.tolist() == [0, 1] and negative.tolist() == [3, 1]
    assert lexicon.first_cue(texts, negative=True) == ["severe", "not accurate"]


def test_lexicon_threads_give_the_same_answer():
    texts = pa.array(["The answer is wrong.", "Accurate.", "Not accurate.", "No errors."] * 20_000)
    one = lexicon.reads_negative(texts, threads=1)
    two = lexicon.reads_negative(texts, threads=2)
    assert one.tolist() == two.tolist() and one.sum() == 40_000


def test_rating_contradicting_its_rationale():
    rows = [
        completion("r", 0, 9, [5, 5, 5, 5], rationales={"truthfulness": "The text contains severe hallucinations."}),
        completion("r", 1, 2, [1, 1, 1, 1], rationales={"helpfulness": "The response is accurate and comprehensive."}),
        completion("r", 2, 9, [5, 5, 5, 5], rationales={"truthfulness": "The text is free of hallucinations and not incorrect."}),
        completion("r", 3, 5.5, [3, 3, 3, 3], rationales={"honesty": "The answer is wrong."}),  # 3: neither high nor low
    ]
    flags, summary = run(rows)
    rows_out = by_key(flags)
    assert set(rows_out) == {("r", 0), ("r", 1)}
    assert rows_out[("r", 0)]["reasons"] == ["truthfulness: rated 5 but the rationale reads negative ('severe')"]
    assert rows_out[("r", 1)]["reasons"] == ["helpfulness: rated 1 but the rationale reads positive ('accurate')"]
    assert summary["contradictions_by_aspect"] == {"instruction_following": 0, "honesty": 0, "truthfulness": 1,
                                                   "helpfulness": 1}
    assert run(rows, rationale_check="none")[0].num_rows == 0
    # A 4 counts as high by default; with high_rating=5 it no longer does.
    four = [completion("s", 0, 7.75, [4, 4, 4, 4], rationales={"honesty": "The answer is wrong."})]
    assert run(four)[0].num_rows == 1 and run(four, high_rating=5)[0].num_rows == 0


# --- duplicates --------------------------------------------------------------------------------

def test_duplicates_within_a_prompt_not_across():
    rows = [
        completion("d", 0, 8, [4] * 4, response="Paris is the capital of France."),
        completion("d", 1, 8, [4] * 4, response="  PARIS is the capital of france.\n"),
        completion("d", 2, 8, [4] * 4, response="Paris is the capital of Francf."),  # same length, other text
        completion("e", 0, 8, [4] * 4, response="Paris is the capital of France."),  # another prompt
        completion("f", 0, 8, [4] * 4, response="Yes."),
        completion("f", 1, 8, [4] * 4, response="yes."),
        completion("f", 2, 8, [4] * 4, response="YES."),
    ]
    flags, summary = run(rows)
    found = {key: row["reasons"] for key, row in by_key(flags).items()}
    assert found == {
        ("d", 0): ["same response as completion 1"], ("d", 1): ["same response as completion 0"],
        ("f", 0): ["same response as completions 1, 2"], ("f", 1): ["same response as completions 0, 2"],
        ("f", 2): ["same response as completions 0, 1"],
    }
    assert summary["flag_counts"]["duplicate_response"] == 5


# --- order and summary -------------------------------------------------------------------------

def test_worst_first_and_summary_counts():
    bad = {"instruction_following": "The text is irrelevant to the instruction."}
    rows = [
        completion("x", 0, None, [1, 1, 1, 1]),                            # clean
        completion("x", 1, None, [4, None, 4, 4]),                         # missing: 1.0
        completion("y", 0, 10, [1, 1, 2, 1], model="m-a", source="s2"),    # critique: 0.9375 + 3
        completion("y", 1, None, [5, None, 5, 5], rationales=bad),         # contradiction + missing: 2.0
        completion("z", 0, 10, [1, 1, 1, 1], model="m-a", source="s2"),    # critique: 1.0 + 3
    ]
    flags, summary = run(rows)
    order = [(r["prompt_id"], r["completion_index"], r["severity"]) for r in flags.to_pylist()]
    # Notus's case (a critique 10 over ratings near 1) comes first, then the other findings.
    assert order == [("z", 0, 4.0), ("y", 0, 3.9375), ("y", 1, 2.0), ("x", 1, 1.0)]
    assert by_key(flags)[("y", 1)]["flags"] == ["rating_contradicts_rationale", "missing_rating"]
    assert flags.column_names == ["prompt_id", "completion_index", "model", "source", "overall_score", "aspect_mean",
                                  "critique_gap", "severity", "flags", "reasons"]
    assert summary["completions"] == 5 and summary["prompts"] == 3
    assert summary["flagged"] == 4 and summary["share_flagged"] == 0.8
    assert summary["flag_counts"] == {"critique_disagrees": 2, "rating_contradicts_rationale": 1,
                                      "missing_rating": 2, "missing_critique_score": 0, "duplicate_response": 0,
                                      "na_rating": 0}
    assert summary["by_model"]["m-a"] == {"completions": 2, "flagged": 2, "share_flagged": 1.0,
                                          "critique_disagrees": 2, "rating_contradicts_rationale": 0,
                                          "missing_rating": 0, "missing_critique_score": 0, "duplicate_response": 0,
                                          "na_rating": 0}
    assert summary["by_model"]["model-1"]["completions"] == 2 and summary["by_model"]["model-1"]["flagged"] == 2
    assert summary["by_model"]["model-0"]["flagged"] == 0
    assert summary["by_source"]["s2"]["flagged"] == 2 and summary["by_source"]["src"]["completions"] == 3
    assert summary["by_source"]["src"]["missing_rating"] == 2


def test_empty_input():
    flags, summary = audit(completions_from_rows([]))
    assert flags.num_rows == 0 and summary["completions"] == 0 and summary["share_flagged"] == 0.0


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, options, words", [
    ([completion("p", 0, 11, [5] * 4)], {}, ["overall_score", "11", "'p'"]),
    ([completion("p", 0, 9, [5, 6, 5, 5])], {}, ["rating_honesty", "6"]),
    ([completion("p", 0, 9, [5, 0, 5, 5])], {}, ["rating_honesty", "1-5"]),
    ([completion("p", 0, 9, [5] * 4)], {"rationale_check": "llm"}, ["rationale_check", "llm"]),
    ([completion("p", 0, 9, [5] * 4)], {"critique_rule": "strict"}, ["critique_rule", "strict"]),
    ([completion("p", 0, 9, [5] * 4)], {"max_gap": 0}, ["max_gap"]),
    ([completion("p", 0, 9, [5] * 4)], {"high_rating": 2, "low_rating": 3}, ["low_rating", "high_rating"]),
])
def test_bad_input_is_one_line(rows, options, words):
    with pytest.raises(NotosError) as error:
        run(rows, **options)
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_missing_column_is_named():
    c = completions_from_rows([completion("p", 0, 9, [5] * 4)])
    c.table = c.table.drop_columns(["rationale_honesty"])
    with pytest.raises(DataError, match="rationale_honesty"):
        audit(c)


# --- the benchmark's data generator ------------------------------------------------------------

def test_curate_data_script_writes_ultrafeedback_records(tmp_path):
    out, bench, truth = tmp_path / "uf.parquet", tmp_path / "bench.jsonl", tmp_path / "truth.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "curate_data.py"), "--n", "50", "--out", str(out),
                           "--benchmark", str(bench), "--truth", str(truth), "--seed", "3"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = pq.read_table(out).to_pylist()
    planted = json.loads(truth.read_text())
    assert len(records) == 50
    sources = {"evol_instruct", "false_qa", "flan_v2_cot", "flan_v2_flan2021", "flan_v2_niv2", "flan_v2_p3",
               "sharegpt", "truthful_qa", "ultrachat"}
    planted_records = {p["record"] for p in planted["benchmark_plants"].values()}
    for i, record in enumerate(records):
        assert record["source"] in sources and isinstance(record["instruction"], str)
        if i not in planted_records:
            assert 20 <= len(record["instruction"].split()) <= 200
        assert len(record["models"]) == 4 and len(set(record["models"])) == 4
        assert len(record["completions"]) == 4
        for model, c in zip(record["models"], record["completions"]):
            assert c["model"] == model
            assert c["principle"] in ("helpfulness", "honesty", "truthfulness", "verbalized_calibration")
            assert c["custom_system_prompt"] and 50 <= len(c["response"].split()) <= 400
            assert set(c["annotations"]) == set(ASPECTS)
            numbers = []
            for aspect, a in c["annotations"].items():
                assert a["Rating"] in ("1", "2", "3", "4", "5", "N/A", None)
                assert a["Rating"] != "N/A" or aspect == "honesty"
                rationale = a["Rationale For Rating"] if aspect in ("truthfulness", "helpfulness") else a["Rationale"]
                assert 15 <= len(rationale.split()) <= 40
                if aspect in ("truthfulness", "helpfulness"):
                    assert a["Type"] and all(t in "0123" for t in a["Type"]) and a["Rationale"]
                if a["Rating"] not in ("N/A", None):
                    numbers.append(int(a["Rating"]))
            assert 1 <= c["overall_score"] <= 10 and c["critique"]
            assert c["fine-grained_score"] == round(sum(numbers) / len(numbers), 4)  # as records.py writes it
    for index, k in planted["critique_disagreements"]:
        c = records[index]["completions"][k]
        assert c["overall_score"] == 10 and c["fine-grained_score"] <= 2
    # 1% of the 1,000 benchmark questions sit in the prompts, verbatim or inside other words.
    questions = [json.loads(line) for line in bench.read_text().splitlines()]
    assert len(questions) == 1000 and {len(q["turns"]) for q in questions} == {2}
    assert set(questions[0]) == {"question_id", "category", "turns"}
    prompts = [r["instruction"] for r in records]
    inside = {q["question_id"]: [i for i, p in enumerate(prompts) if q["turns"][0] in p] for q in questions}
    inside = {qid: where for qid, where in inside.items() if where}
    assert len(inside) == 10
    for qid, plant in planted["benchmark_plants"].items():
        assert inside[int(qid)] == [plant["record"]]
        text = next(q["turns"][0] for q in questions if q["question_id"] == int(qid))
        assert (prompts[plant["record"]] == text) == (plant["how"] == "verbatim")
    assert {p["how"] for p in planted["benchmark_plants"].values()} == {"verbatim", "embedded"}


def test_generated_data_audits_as_planted(tmp_path):
    from notos.data.records import prompt_ids, read_completions

    out, truth = tmp_path / "uf.parquet", tmp_path / "truth.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "curate_data.py"), "--n", "400", "--out", str(out),
                    "--truth", str(truth)], check=True, capture_output=True, timeout=120)
    planted = json.loads(truth.read_text())
    ids = prompt_ids(pq.read_table(out)).to_pylist()
    flags, summary = audit(read_completions(out))
    found = {(r["prompt_id"], r["completion_index"], f) for r in flags.to_pylist() for f in r["flags"]}
    critique = {(ids[i], k, "critique_disagrees") for i, k in planted["critique_disagreements"]}
    contradictions = {(ids[i], k, "rating_contradicts_rationale") for i, k, _ in planted["rationale_contradictions"]}
    duplicates = {(ids[i], k, "duplicate_response") for i in planted["duplicate_prompts"] for k in (0, 1)}
    assert critique and contradictions
    assert {f for f in found if f[2] == "critique_disagrees"} == critique
    assert {f for f in found if f[2] == "rating_contradicts_rationale"} == contradictions
    assert {f for f in found if f[2] == "duplicate_response"} == duplicates
    assert summary["completions"] == 1600


def test_a_critique_without_a_readable_score_is_flagged():
    import pyarrow as pa

    from notos.curate.audit import MISSING_CRITIQUE_SCORE, audit
    from notos.data.completions import Completions, schema_for

    rows = [{"prompt_id": "p", "prompt": "q", "source": None, "completion_index": i, "model": "m", "response": f"r{i}",
             "overall_score": score, "critique": critique, "rating_helpfulness": 4.0, "na_helpfulness": False,
             "rationale_helpfulness": None}
            for i, (score, critique) in enumerate([(8.0, "Good."), (None, "Feedback: hard to say."), (None, None)])]
    flags, summary = audit(Completions(pa.Table.from_pylist(rows, schema=schema_for(["helpfulness"])), ["helpfulness"]))
    flagged = {r["completion_index"]: r["flags"] for r in flags.to_pylist()}
    assert flagged == {1: [MISSING_CRITIQUE_SCORE]}  # no critique at all (2) is no critique to read
    assert summary["flag_counts"][MISSING_CRITIQUE_SCORE] == 1
