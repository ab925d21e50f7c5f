"""The ultrafeedback_rating step: against the loopback judge (text mode) and the embedded model (logprob mode)."""

import pytest

from notos.errors import GraphError
from notos.pipeline import from_rows, load_run, run
from notos.tasks import ultrafeedback_rating


def judge(server):
    return {"backend": "openai", "base_url": server.base_url, "model": "judge", "max_retries": 0}


def rows_with(*responses_per_row):
    return [{"instruction": f"question {i}", "generations": list(r)} for i, r in enumerate(responses_per_row)]


def test_ratings_land_on_their_own_response_after_shuffling(llm_server, tmp_path):
    data = rows_with(*[[f"answer {j} [{(i + j) % 5 + 1}]" for j in range(4)] for i in range(12)])
    step = ultrafeedback_rating(llm=judge(llm_server), name="rate", seed=7)
    result = run(from_rows(rows=data) >> step, tmp_path / "r", progress=False)
    rows = sorted(load_run(tmp_path / "r")["rate"].to_list(), key=lambda r: int(r["instruction"].split()[1]))
    for i, row in enumerate(rows):
        assert row["ratings"] == [(i + j) % 5 + 1 for j in range(4)]
        assert row["rationales"] == [f"rated {(i + j) % 5 + 1} for text " + row["rationales"][j].rsplit(" ", 1)[1] for j in range(4)]
        assert row["rating_errors"] == [None] * 4 and row["rating_model"] == "judge"
    # The judge saw the responses in a shuffled order for most rows (position bias).
    shown_first = [b["messages"][1]["content"].split("<text 1>\n")[1].split("\n")[0] for b in llm_server.requests]
    assert sum(1 for s in shown_first if not s.startswith("answer 0")) >= 6
    assert result.stats["rate"]["tokens"] > 0


def test_several_aspects_give_suffixed_columns_and_typed_fields(llm_server, tmp_path):
    step = ultrafeedback_rating(llm=judge(llm_server), name="rate", aspects=["honesty", "truthfulness"])
    run(from_rows(rows=rows_with(["a [2]", "b [4]"])) >> step, tmp_path / "r", progress=False)
    [row] = load_run(tmp_path / "r")["rate"].to_list()
    assert row["ratings_honesty"] == [2, 4] and row["ratings_truthfulness"] == [2, 4]
    assert "types_truthfulness" in row and "types_honesty" not in row
    assert set(row["rating_raw"]) == {"honesty", "truthfulness"}
    assert len(llm_server.requests) == 2  # one judge call per aspect


def test_a_failed_judge_request_fails_its_row_only(llm_server, tmp_path):
    data = rows_with(["fine [4]", "ok [2]"], ["[500] broken [1]", "x [3]"])
    run(from_rows(rows=data) >> ultrafeedback_rating(llm=judge(llm_server), name="rate"), tmp_path / "r", progress=False)
    rows = {r["instruction"]: r for r in load_run(tmp_path / "r")["rate"].to_list()}
    assert rows["question 0"]["ratings"] == [4, 2] and rows["question 0"]["_error"] is None
    assert rows["question 1"]["_error"] == "rate: HTTP 500 internal failure"


@pytest.mark.parametrize("options, message", [
    ({"aspects": "kindness"}, "unknown aspect 'kindness'"),
    ({"mode": "vibes"}, "option 'mode' must be auto, text or logprob"),
    ({"aspects": []}, "at least one aspect"),
    ({"seed": "x"}, "option 'seed' must be an integer"),
])
def test_bad_options(options, message):
    with pytest.raises(GraphError, match=message):
        ultrafeedback_rating(name="rate", **options)


@pytest.mark.slow  # the embedded model or lm-eval on it
def test_logprob_mode_on_the_embedded_model_always_gives_valid_ratings(tmp_path):
    data = rows_with(["Paris is the capital of France.", "The capital of France is Berlin."],
                     ["Two plus two is four.", "banana"])
    step = ultrafeedback_rating(name="rate")  # mode auto: logprob on a local model
    run(from_rows(rows=data) >> step, tmp_path / "r", progress=False)
    for row in load_run(tmp_path / "r")["rate"].to_list():
        assert row["_error"] is None and row["rating_model"] == "SmolLM2-135M-Instruct"
        assert all(r in (1, 2, 3, 4, 5) for r in row["ratings"])
        assert all(1.0 <= e <= 5.0 for e in row["ratings_expected"])
