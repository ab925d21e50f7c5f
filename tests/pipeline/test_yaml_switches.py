"""`enabled: false` leaves a step out and reconnects its children; `--set step.llm.key=value`
changes one key of an LLM spec."""

import pytest
import yaml

from notos.recipes import FOLDER as RECIPES
from notos.errors import NotosError
from notos.pipeline import to_yaml
from notos.recipes import build_pipeline, load_pipeline


def config(**critique_extra):
    return {"name": "p", "steps": [
        {"name": "src", "type": "from_rows", "rows": [{"instruction": "a", "generations": ["x"]}]},
        {"name": "one", "type": "keep_columns", "columns": ["instruction", "generations"], "after": "src"},
        {"name": "two", "type": "keep_columns", "columns": ["instruction", "generations"], "after": "src"},
        {"name": "mid", "type": "group_columns", "columns": ["generations"], "after": ["one", "two"], **critique_extra},
        {"name": "end", "type": "keep_columns", "columns": ["instruction"], "after": "mid"},
    ]}


def test_a_disabled_step_hands_its_parents_to_its_children():
    pipeline = build_pipeline(config(enabled=False))
    assert "mid" not in pipeline.by_name
    assert [p.name for p in pipeline.by_name["end"].parents] == ["one", "two"]
    assert build_pipeline(config(enabled=True)).by_name["end"].parents[0].name == "mid"


def test_enabled_must_be_a_bool():
    with pytest.raises(NotosError, match="step 'mid': 'enabled' must be true or false, got 'no'"):
        build_pipeline(config(enabled="no"))


def test_shipped_ultrafeedback_without_critique_is_valid():
    pipeline, _ = load_pipeline(RECIPES / "ultrafeedback.yaml", ["critique.enabled=false"])
    pipeline.validate()
    assert "critique" not in pipeline.by_name
    assert [p.name for p in pipeline.by_name["records"].parents] == ["rate"]


def test_set_one_key_inside_an_llm_spec(tmp_path):
    pipeline, cfg = load_pipeline(RECIPES / "ultrafeedback.yaml", ["rate.llm.model=gpt-4.1", "rate.llm.timeout=30"])
    rate = next(s for s in cfg["steps"] if s["name"] == "rate")
    assert rate["llm"]["model"] == "gpt-4.1" and rate["llm"]["backend"] == "openai" and rate["llm"]["timeout"] == 30
    assert pipeline.by_name["rate"].options["llm"]["model"] == "gpt-4.1"
    with pytest.raises(NotosError, match="--set prompts.path.x=1: option 'path' is not a mapping"):
        load_pipeline(RECIPES / "ultrafeedback.yaml", ["prompts.path.x=1"])


def test_ultrafeedback_recipe_round_trips():
    pipeline, _ = load_pipeline(RECIPES / "ultrafeedback.yaml")
    again = build_pipeline(yaml.safe_load(to_yaml(pipeline)))
    assert again.fingerprints() == pipeline.fingerprints()
