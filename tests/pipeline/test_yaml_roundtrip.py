"""Pipelines written in YAML and in Python are the same thing, and round-trip."""

import yaml

from notos.pipeline import Pipeline, from_rows, group_columns, sample_n, to_config, to_yaml
from notos.recipes import build_pipeline, load_pipeline
from notos.recipes.steps import tidy_instruction


def python_pipeline():
    src = from_rows([{"instruction": " a  b "}, {"instruction": "c"}], name="prompts")
    branches = [tidy_instruction(name=f"t{i}", concurrency=2) for i in range(3)]
    src >> sample_n(2, seed=5, name="route") >> branches
    branches >> group_columns(["n_words"], ["word_counts"], name="group")
    return Pipeline(src, name="roundtrip", batch_size=7)


def test_python_to_yaml_to_pipeline_is_identical():
    original = python_pipeline()
    text = to_yaml(original)
    rebuilt = build_pipeline(yaml.safe_load(text))
    assert to_config(rebuilt) == to_config(original)
    assert rebuilt.fingerprints() == original.fingerprints()
    assert [s.name for s in rebuilt.by_name["route"].children] == ["t0", "t1", "t2"]
    assert rebuilt.by_name["t1"].concurrency == 2


def test_shipped_quickstart_round_trips_and_validates():
    from notos.recipes import FOLDER as RECIPES

    pipeline, config = load_pipeline(RECIPES / "quickstart.yaml")
    pipeline.validate()
    again = build_pipeline(yaml.safe_load(to_yaml(pipeline)))
    assert again.fingerprints() == pipeline.fingerprints()


def test_set_overrides_change_the_option_and_the_fingerprint(tmp_path):
    from notos.recipes import FOLDER as RECIPES

    base, _ = load_pipeline(RECIPES / "quickstart.yaml")
    changed, config = load_pipeline(RECIPES / "quickstart.yaml", ["long_enough.value=5"])
    assert changed.by_name["long_enough"].options["value"] == 5
    fb, fc = base.fingerprints(), changed.fingerprints()
    assert fb["tidy"] == fc["tidy"]  # upstream of the change: reused
    assert fb["long_enough"] != fc["long_enough"] and fb["dataset"] != fc["dataset"]
    resized, _ = load_pipeline(RECIPES / "quickstart.yaml", ["batch_size=4"])
    assert resized.batch_size == 4 and resized.fingerprints()["tidy"] != fb["tidy"]  # batches are cut differently


def test_input_replaces_the_source(tmp_path):
    from notos.recipes import FOLDER as RECIPES

    data = tmp_path / "mine.jsonl"
    data.write_text('{"instruction": "what is two plus two"}\n')
    pipeline, config = load_pipeline(RECIPES / "quickstart.yaml", [], str(data))
    source = pipeline.by_name["prompts"]
    assert source.type_name == "load_data" and source.options["path"] == str(data.resolve())
    pipeline.validate()
