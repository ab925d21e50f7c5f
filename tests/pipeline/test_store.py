"""The run folder: secrets redacted, commits atomic, manifest readable."""

import yaml

from notos.pipeline import Pipeline, from_rows, run, step
from notos.pipeline.store import RunStore, redact


def test_redact_hides_secret_like_keys_but_keeps_env_var_names():
    config = {"steps": [{"name": "llm", "api_key": "sk-live-123", "api_key_env": "OPENAI_API_KEY", "headers": {"Authorization": "Bearer x"}}]}
    clean = redact(config)
    step = clean["steps"][0]
    assert step["api_key"] == "***" and step["headers"]["Authorization"] == "***"
    assert step["api_key_env"] == "OPENAI_API_KEY"


def test_no_secret_reaches_the_run_folder(tmp_path):
    @step(inputs=["instruction"], outputs=["ok"])
    def with_secret(row, api_key=None):
        return {"ok": api_key is not None}

    src = from_rows([{"instruction": "x"}])
    src >> with_secret(api_key="sk-do-not-leak-42")
    run(Pipeline(src), tmp_path / "r", progress=False)
    written = b"".join(p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert b"sk-do-not-leak-42" not in written
    assert yaml.safe_load((tmp_path / "r" / "pipeline.yaml").read_text())["steps"][1]["api_key"] == "***"


def test_commit_is_atomic_and_skips_by_signature(tmp_path):
    store = RunStore(tmp_path / "r")
    store.open({"leaves": {}}, "name: x\n")
    store.commit("s", "f" * 64, 3, "abcdef012345", [{"row_id": "a", "x": 1}])
    store.commit("s", "f" * 64, 4, "abcdef012346", [])
    assert store.has("s", "f" * 64, 3, "abcdef012345")
    assert not store.has("s", "f" * 64, 3, "000000000000")
    assert store.load("s", "f" * 64, 3, "abcdef012345") == [{"row_id": "a", "x": 1}]
    assert store.load("s", "f" * 64, 4, "abcdef012346") == []
    assert not list((tmp_path / "r").rglob(".*.tmp-*"))
    fresh = RunStore(tmp_path / "r")  # a new process sees the same commits
    assert fresh.committed("s", "f" * 64) == {3: {"abcdef012345"}, 4: {"abcdef012346"}}


def test_a_column_missing_from_the_first_row_is_kept(tmp_path):
    store = RunStore(tmp_path / "r")
    store.open({"leaves": {}}, "name: x\n")
    rows = [{"row_id": "a", "_error": "gen: failed"}, {"row_id": "b", "_error": None, "answer": "yes"}]
    store.commit("s", "f" * 64, 0, "abcdef012345", rows)
    assert store.load("s", "f" * 64, 0, "abcdef012345") == [
        {"row_id": "a", "_error": "gen: failed", "answer": None},
        {"row_id": "b", "_error": None, "answer": "yes"},
    ]
