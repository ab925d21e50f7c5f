"""`--llm-base-url` and the recipe's pool of generators: resolved model names are recorded, a
pool that collapses onto one model is called out, and `--llm-models` spreads it."""

import json

import yaml

from fake_llm_server import FakeLLMServer
from notos.pipeline import load_run


def prompts(tmp_path, n=4):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "instruction": f"Explain topic {i}."}) + "\n" for i in range(n)))
    return path


def generator_models(out):
    config = yaml.safe_load((out / "pipeline.yaml").read_text())
    return {e["name"]: e["llm"]["model"] for e in config["steps"] if e["type"] == "text_generation"}


def test_one_model_server_records_the_resolved_name_and_says_the_pool_collapsed(cli, tmp_path):
    with FakeLLMServer(model="solo") as server:
        done = cli("run", "ultrafeedback", "--input", prompts(tmp_path), "--llm-base-url", server.base_url,
                   "--set", "critique.enabled=false", "--no-progress", "--out", tmp_path / "r")
    assert done.returncode == 0, done.stderr
    assert set(generator_models(tmp_path / "r").values()) == {"solo"}  # not "auto"
    assert "points all 6 generators at one model (solo)" in done.stderr and "--llm-models" in done.stderr


def test_llm_models_all_spreads_the_pool_over_what_the_server_lists(cli, tmp_path):
    with FakeLLMServer(models=["m1", "m2", "m3"]) as server:
        done = cli("run", "ultrafeedback", "--input", prompts(tmp_path), "--llm-base-url", server.base_url,
                   "--llm-models", "all", "--set", "critique.enabled=false", "--no-progress", "--out", tmp_path / "r")
        asked = {r["model"] for r in server.requests}
    assert done.returncode == 0, done.stderr
    assert "generators at one model" not in done.stderr
    models = generator_models(tmp_path / "r")
    assert sorted(models.values()) == ["m1", "m1", "m2", "m2", "m3", "m3"]
    assert asked == {"m1", "m2", "m3"}  # the judge takes the first listed model, m1
    records = load_run(tmp_path / "r")["records"].to_list()
    assert len({m for r in records for m in r["models"]}) >= 2  # each row's 3 answers come from the pool


def test_llm_models_needs_the_base_url_and_names(cli, tmp_path):
    alone = cli("run", "ultrafeedback", "--llm-models", "m1,m2", "--dry-run")
    assert alone.returncode == 2 and "--llm-base-url" in alone.stderr
    with FakeLLMServer() as server:
        empty = cli("run", "ultrafeedback", "--llm-base-url", server.base_url, "--llm-models", ",", "--dry-run")
    assert empty.returncode == 2 and "--llm-models" in empty.stderr
