"""Fingerprint scheme 2: built-in steps by type name and version, and the one-time move of a
scheme-1 run folder's cache (see notos/pipeline/executors/migrate.py for the rule)."""

import inspect
import json
from collections import Counter
from pathlib import Path

import pytest

from notos.pipeline import Pipeline, drop_columns, filter_rows, from_rows, global_step, keep_columns, load_run, run, step
from notos.pipeline.executors.migrate import migrate_cache
from notos.pipeline.executors.reading import data_identity
from notos.pipeline.step import Step
from notos.pipeline.store import RunStore

CALLS: Counter = Counter()


@pytest.fixture(autouse=True)
def fresh_calls():
    CALLS.clear()


@step(inputs=["instruction"], outputs=["n"])
def count(row):
    CALLS["count"] += 1
    return {"n": len(row["instruction"])}


@global_step(inputs=["instruction"], outputs=["rank"])
def rank(rows):
    CALLS["rank"] += 1
    return [{**r, "rank": i} for i, r in enumerate(sorted(rows, key=lambda r: r["instruction"]))]


def _reverse(rows):
    CALLS["reverse"] += 1
    return list(reversed(rows))


def reverse_rows():
    """Stands for a built-in global step (dedup, binarize): a type name other than python."""
    return Step(name="reverse_rows", kind="global", fn=_reverse, per_row=False, type_name="reverse_rows")


def legacy_code_identity(self) -> str:
    """Scheme 1, as notos had it: every step by the source of its function."""
    try:
        source = inspect.getsource(self.fn)
    except (OSError, TypeError):
        source = getattr(self.fn, "__qualname__", repr(self.fn))
    return f"{self.type_name}:{getattr(self.fn, '__module__', '')}:{source}:{self.ref}"


def to_scheme_1(out: Path, pipeline: Pipeline, monkeypatch, changed: dict | None = None) -> dict:
    """Rewrite a run folder made now into the same run made under scheme 1: the fingerprints
    of the old code identity (or `changed` ones), cache folders named after them, no marker."""
    data_ids = None
    if any(s.kind == "global" for s in pipeline.steps):
        data_ids = {s.name: data_identity(s, pipeline.batch_size, None) for s in pipeline.sources}
    with monkeypatch.context() as patch:
        patch.setattr(Step, "code_identity", legacy_code_identity)
        old = {**pipeline.fingerprints(data_ids), **(changed or {})}
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["steps"].items():
        folder = out / entry["cache"]
        entry.update(fingerprint=old[name], cache=f"cache/{name}-{old[name][:12]}")
        if folder.is_dir():
            folder.rename(out / entry["cache"])
    del manifest["fingerprint_scheme"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    return old


def prompts():
    return from_rows([{"instruction": f"question {i}"} for i in range(30)])


def chain(op: str = "not_null", extra_leaf: bool = False) -> Pipeline:
    src = prompts()
    counted = count()
    src >> filter_rows("instruction", op, 1 if op == "min_length" else None) >> counted >> keep_columns(["instruction", "n"])
    if extra_leaf:
        counted >> drop_columns(["n"])
    return Pipeline(src, batch_size=10)


def rows_of(out: Path) -> dict:
    return {leaf: data.to_list() for leaf, data in load_run(out).items()}


def test_built_in_steps_are_fingerprinted_by_type_and_version_python_steps_by_source():
    a, b = filter_rows("instruction", "not_null"), filter_rows("instruction", "not_null")
    assert a.code_identity() == "filter_rows@1"
    b.version = 2
    assert a.own_hash() != b.own_hash()  # bumping a built-in's version reruns it
    assert "CALLS[\"count\"] += 1" in count().code_identity()


def test_a_scheme_1_folder_is_carried_over_once_and_nothing_is_computed_again(tmp_path, monkeypatch):
    out = tmp_path / "run"
    run(chain(), out, progress=False)
    before = rows_of(out)
    old = to_scheme_1(out, chain(), monkeypatch)
    new = chain(extra_leaf=True).fingerprints()
    assert old["count"] != new["count"] and old["keep_columns"] != new["keep_columns"]  # both moved by filter_rows
    CALLS.clear()
    # A new leaf under `count`, so that `count` has to hand its rows on: from its cache.
    result = run(chain(extra_leaf=True), out, progress=False)
    assert CALLS["count"] == 0
    assert result.stats["count"]["rows_in"] == 0 and result.stats["count"]["rows_cached"] == 30
    assert result.stats["keep_columns"]["rows_in"] == 0 and result.stats["drop_columns"]["rows_in"] == 30
    assert rows_of(out)["keep_columns"] == before["keep_columns"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint_scheme"] == 2
    assert {p.name for p in (out / "cache").iterdir()} == {f"{n}-{new[n][:12]}" for n in ("count", "keep_columns", "drop_columns")}
    # Once: the folder now says scheme 2, and nothing is looked at again.
    assert migrate_cache(RunStore(out), chain(), chain().fingerprints(), (out / "pipeline.yaml").read_text()) == []


def test_a_changed_built_in_step_is_not_carried_over(tmp_path, monkeypatch):
    out = tmp_path / "run"
    run(chain(), out, progress=False)
    to_scheme_1(out, chain(), monkeypatch)
    CALLS.clear()
    run(chain(op="min_length"), out, progress=False)
    assert CALLS["count"] == 30


def test_a_python_step_whose_code_changed_is_not_carried_over(tmp_path, monkeypatch):
    out = tmp_path / "run"
    run(chain(), out, progress=False)
    to_scheme_1(out, chain(), monkeypatch, changed={"count": "0" * 64})  # as if `count` had other code then
    CALLS.clear()
    result = run(chain(), out, progress=False)
    assert CALLS["count"] == 30 and result.stats["keep_columns"]["rows_in"] == 30


def test_a_python_global_step_is_carried_over(tmp_path, monkeypatch):
    def build():
        src = prompts()
        src >> filter_rows("instruction", "not_null") >> rank() >> count()
        return Pipeline(src, batch_size=10)

    out = tmp_path / "run"
    run(build(), out, progress=False)
    to_scheme_1(out, build(), monkeypatch)
    CALLS.clear()
    result = run(build(), out, progress=False)
    assert CALLS == {} and all(stats["rows_in"] == 0 for stats in result.stats.values())


def test_a_built_in_global_step_computes_again_and_its_children_keep_their_batches(tmp_path, monkeypatch):
    def build():
        src = prompts()
        src >> filter_rows("instruction", "not_null") >> reverse_rows() >> count()
        return Pipeline(src, batch_size=10)

    out = tmp_path / "run"
    run(build(), out, progress=False)
    before = rows_of(out)
    to_scheme_1(out, build(), monkeypatch)
    CALLS.clear()
    result = run(build(), out, progress=False)
    assert CALLS == {"reverse": 1}  # its old fingerprint covered the data, which cannot be checked
    assert result.stats["count"]["rows_in"] == 0
    assert rows_of(out) == before


def test_an_option_left_unset_does_not_enter_a_built_in_fingerprint():
    """A built-in type that gains an option (default None) keeps its users' caches."""
    from notos.pipeline.step import Step

    def fn(rows, **options):
        return rows

    before = Step(name="s", kind="map", fn=fn, options={"a": 1}, type_name="some_type")
    after = Step(name="s", kind="map", fn=fn, options={"a": 1, "new_option": None}, type_name="some_type")
    used = Step(name="s", kind="map", fn=fn, options={"a": 1, "new_option": "x"}, type_name="some_type")
    assert before.own_hash() == after.own_hash() != used.own_hash()
