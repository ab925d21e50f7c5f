"""Principle-conditioned generation (a system prompt drawn per row and generator) and the
UltraFeedback record shape built from rating columns."""

from collections import Counter

import pytest

from notos.errors import GraphError
from notos.pipeline import from_rows, load_run, run
from notos.tasks import text_generation
from notos.tasks.principles import ORCA_SYSTEM_MESSAGES, PRINCIPLES
from notos.tasks.records import record


def server_llm(server):
    return {"backend": "openai", "base_url": server.base_url, "model": "m1", "max_retries": 0}


def test_each_row_is_answered_under_the_principle_recorded_with_it(llm_server, tmp_path):
    data = [{"instruction": f"question {i}"} for i in range(200)]
    step = text_generation(llm=server_llm(llm_server), name="gen", system_prompt_pool="principles")
    run(from_rows(rows=data) >> step, tmp_path / "r", progress=False)
    rows = load_run(tmp_path / "r")["gen"].to_list()
    sent = {req["messages"][-1]["content"]: req["messages"][0]["content"] for req in llm_server.requests}
    for row in rows:
        assert row["system_prompt"] in PRINCIPLES[row["principle"]]
        assert sent[row["instruction"]] == row["system_prompt"]
    counts = Counter(r["principle"] for r in rows)
    # Default weights 0.5 / 0.2 / 0.2 / 0.1: helpfulness dominates, all four appear.
    assert set(counts) == set(PRINCIPLES) and counts["helpfulness"] > 70 and counts["verbalized_calibration"] < 40
    # A rerun under another step name draws again, independently; the same name draws the same.
    again = text_generation(llm=server_llm(llm_server), name="gen", system_prompt_pool="principles")
    run(from_rows(rows=data) >> again, tmp_path / "r2", progress=False)
    assert [r["system_prompt"] for r in load_run(tmp_path / "r2")["gen"].to_list()] == [r["system_prompt"] for r in rows]
    other = text_generation(llm=server_llm(llm_server), name="gen_b", system_prompt_pool="principles")
    run(from_rows(rows=data) >> other, tmp_path / "r3", progress=False)
    other_rows = load_run(tmp_path / "r3")["gen_b"].to_list()
    assert sum(a["system_prompt"] != b["system_prompt"] for a, b in zip(rows, other_rows)) > 50


def test_orca_pool_and_weights(llm_server, tmp_path):
    data = [{"instruction": f"q{i}"} for i in range(40)]
    orca = text_generation(llm=server_llm(llm_server), name="orca", system_prompt_pool="orca")
    honest = text_generation(llm=server_llm(llm_server), name="honest", system_prompt_pool="principles",
                             principle_weights={"honesty": 1})
    source = from_rows(rows=data)
    source >> [orca, honest]
    run(source, tmp_path / "r", progress=False)
    result = load_run(tmp_path / "r")
    for row in result["orca"].to_list():
        assert row["system_prompt"] == ORCA_SYSTEM_MESSAGES[int(row["principle"].removeprefix("orca-"))]
    assert {r["principle"] for r in result["honest"].to_list()} == {"honesty"}


@pytest.mark.parametrize("options, message", [
    ({"system_prompt_pool": "stoic"}, "option 'system_prompt_pool' must be principles or orca"),
    ({"system_prompt_pool": "principles", "system_prompt": "Be brief."}, "set only one"),
    ({"system_prompt_pool": "principles", "principle_weights": {"wit": 1}}, "option 'principle_weights': unknown principle"),
    ({"system_prompt_pool": "principles", "principle_weights": {"honesty": 0}}, "option 'principle_weights'"),
])
def test_bad_pool_options(options, message):
    with pytest.raises(GraphError, match=message):
        text_generation(name="gen", **options)


def rated_row(**extra):
    """Two responses rated on honesty (one N/A) and truthfulness (types), with a critique."""
    return {
        "row_id": "r1", "instruction": "Is the moon made of cheese?", "source": "false_qa",
        "generations": ["No.", "Yes, cheddar."], "generation_models": ["m-a", "m-b"],
        "principles": ["honesty", "helpfulness"], "system_prompts": ["Be honest.", "Be helpful."],
        "ratings_honesty": [5, None], "rationales_honesty": ["Plainly right.", "Not applicable here."],
        "rating_errors_honesty": [None, None], "ratings_expected_honesty": [5.0, None],
        "ratings_truthfulness": [5, None], "rationales_truthfulness": ["Correct.", None],
        "rating_errors_truthfulness": [None, "no section for text 2"], "ratings_expected_truthfulness": [5.0, None],
        "types_truthfulness": ["None", "1,2"], "type_rationales_truthfulness": ["No errors.", "Invents facts."],
        "critiques": ["Good.", "Wrong."], "overall_scores": [9.0, 2.0],
        "rating_raw": {"honesty": "...", "truthfulness": "..."}, **extra,
    }


def test_record_shape_na_types_and_errors():
    out = record(rated_row(), aspects="auto", instruction_column="instruction", generations_column="generations",
                 models_column="generation_models", principles_column="principles",
                 system_prompts_column="system_prompts", source=None, keep=[])
    assert out["models"] == ["m-a", "m-b"] and out["source"] == "false_qa"
    first, second = out["completions"]
    assert first["annotations"]["honesty"] == {"Rating": "5", "Rationale": "Plainly right."}
    assert second["annotations"]["honesty"]["Rating"] == "N/A"  # no rating and no error: the judge's N/A
    assert first["annotations"]["truthfulness"] == {"Type": ["0"], "Rationale": "No errors.", "Rating": "5",
                                                    "Rationale For Rating": "Correct."}
    assert second["annotations"]["truthfulness"]["Type"] == ["1", "2"]
    assert second["annotations"]["truthfulness"]["Rating"] is None
    assert second["annotations"]["truthfulness"]["Error"] == "no section for text 2"
    assert first["fine-grained_score"] == 5.0 and second["fine-grained_score"] is None  # N/A and unrated left out
    assert (first["principle"], first["custom_system_prompt"], first["critique"], first["overall_score"]) == \
        ("honesty", "Be honest.", "Good.", 9.0)
    assert "critique_error" not in first  # no critique step, no field: the published shape


def test_an_unscored_critique_keeps_its_reason_in_the_record():
    row = rated_row(overall_scores=[9.0, None], critique_errors=[None, "no overall score in the critique"])
    out = record(row, aspects="auto", instruction_column="instruction", generations_column="generations",
                 models_column="generation_models", principles_column="principles",
                 system_prompts_column="system_prompts", source=None, keep=[])
    first, second = out["completions"]
    assert (first["overall_score"], first["critique_error"]) == (9.0, None)
    assert (second["overall_score"], second["critique_error"]) == (None, "no overall score in the critique")
