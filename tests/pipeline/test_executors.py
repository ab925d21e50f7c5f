"""LocalExecutor and SyncExecutor give the same rows and the same stats on the same pipelines,
and a run started by one resumes with the other without computing committed batches again."""

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from notos.errors import NotosError
from notos.pipeline import (
    LocalExecutor, Pipeline, SyncExecutor, from_rows, global_step, group_columns, keep_columns, load_run, run,
    sample_n, step,
)

EXECUTORS = {"local": LocalExecutor, "sync": SyncExecutor}
COUNTS = ("rows_in", "rows_out", "rows_failed", "rows_cached", "batches", "tokens")
CALLS: Counter = Counter()


@pytest.fixture(autouse=True)
def fresh_calls():
    CALLS.clear()


def prompts(n: int):
    return from_rows([{"instruction": f"question {i}"} for i in range(n)])


def counts(result) -> dict:
    return {name: {k: stats[k] for k in COUNTS} for name, stats in result.stats.items()}


def rows_of(out: Path) -> dict:
    return {leaf: data.to_list() for leaf, data in load_run(out).items()}


def same_on_both(tmp_path: Path, build, runs=({},)) -> dict:
    """Run `build()` on each executor into its own folder, once per entry of `runs` (the
    keyword arguments of that run); after each run both must have the same rows and counts."""
    seen = {}
    for i, options in enumerate(runs):
        for name, executor in EXECUTORS.items():
            result = run(build(), tmp_path / name, progress=False, executor=executor(), **options)
            seen[name] = (rows_of(tmp_path / name), counts(result))
        assert seen["local"] == seen["sync"], f"run {i + 1} differs"
    return seen["sync"]


@step(inputs=["instruction"], outputs=["words"])
def words(row):
    CALLS["words"] += 1
    return {"words": len(row["instruction"].split())}


@step(inputs=["instruction"], outputs=["shout"], batch=True)
def shout(rows):
    CALLS["shout"] += len(rows)
    return [{**r, "shout": r["instruction"].upper(), "_tokens": 3} for r in rows]


@step(inputs=["instruction"], outputs=["answer", "model"])
async def answer(row, model="m"):
    await asyncio.sleep(0.001)
    return {"answer": f"{model}:{row['instruction']}", "model": model}


@step(inputs=["instruction"], outputs=["n"])
def fragile(row):
    if row["instruction"].endswith("3"):
        raise ValueError("cannot handle threes")
    return {"n": len(row["instruction"])}


@step(inputs=["instruction"], outputs=["ok"], batch=True)
def poisoned(rows):
    if any(r["instruction"] == "question 5" for r in rows):
        raise RuntimeError("poison row in batch")
    return [{**r, "ok": True} for r in rows]


@global_step(inputs=["instruction"], outputs=["rank"])
def rank(rows):
    CALLS["rank"] += 1
    ordered = sorted(rows, key=lambda r: r["instruction"], reverse=True)
    return [{**r, "rank": i} for i, r in enumerate(ordered)]


def test_map_and_batch_map_with_tokens_and_a_thread_pool(tmp_path):
    def build():
        src = prompts(45)
        src >> words() >> shout(workers="thread", concurrency=2)
        return Pipeline(src, batch_size=10)

    rows, stats = same_on_both(tmp_path, build)
    assert [r["shout"] for r in rows["shout"]] == [f"QUESTION {i}" for i in range(45)]
    assert stats["shout"] == {"rows_in": 45, "rows_out": 45, "rows_failed": 0, "rows_cached": 0, "batches": 5, "tokens": 135}


@step(inputs=["instruction"], outputs=["length"], batch=True)
def length(rows):
    return [{**r, "length": len(r["instruction"])} for r in rows]


def test_a_process_pool(tmp_path):
    def build():
        src = prompts(30)
        src >> length(workers="process", concurrency=2)
        return Pipeline(src, batch_size=7)

    rows, stats = same_on_both(tmp_path, build)
    assert [r["length"] for r in rows["length"]] == [len(f"question {i}") for i in range(30)]


def test_async_steps(tmp_path):
    def build():
        src = prompts(60)
        src >> answer(concurrency=3, row_concurrency=8)
        return Pipeline(src, batch_size=7)

    rows, stats = same_on_both(tmp_path, build)
    assert [r["answer"] for r in rows["answer"]] == [f"m:question {i}" for i in range(60)]
    assert stats["answer"]["batches"] == 9


def test_route_with_sample_n_and_fan_in_group_columns(tmp_path):
    def build():
        src = prompts(80)
        branches = [answer(name=f"g{i}", model=f"m{i}") for i in range(4)]
        src >> sample_n(2, seed=5) >> branches
        branches >> group_columns(["answer", "model"], ["answers", "models"])
        return Pipeline(src, batch_size=10)

    rows, stats = same_on_both(tmp_path, build)
    assert all(len(r["models"]) == 2 and r["answers"] == [f"{m}:{r['instruction']}" for m in r["models"]]
               for r in rows["group_columns"])
    assert stats["sample_n"]["rows_in"] == 80 and sum(stats[f"g{i}"]["rows_in"] for i in range(4)) == 160


def test_a_global_step_and_the_steps_after_it(tmp_path):
    def build():
        src = prompts(55)
        src >> words() >> rank() >> keep_columns(["instruction", "words", "rank"])
        return Pipeline(src, batch_size=10)

    rows, stats = same_on_both(tmp_path, build, runs=({}, {}))  # the second run loads everything
    assert [r["rank"] for r in rows["keep_columns"]] == list(range(55))
    assert CALLS["rank"] == 2  # once per executor
    assert stats["rank"]["rows_in"] == 0 and stats["keep_columns"]["rows_in"] == 0


def test_failing_rows_are_kept_and_counted_alike(tmp_path):
    def build():
        src = prompts(40)
        src >> [fragile(), poisoned()]
        return Pipeline(src, batch_size=10)

    rows, stats = same_on_both(tmp_path, build)
    assert stats["fragile"]["rows_failed"] == 4 and stats["poisoned"]["rows_failed"] == 1
    assert [r["instruction"] for r in rows["poisoned"] if r["_error"]] == ["question 5"]


def test_resume_after_a_partial_run(tmp_path):
    def build():
        src = prompts(50)
        src >> words() >> shout()
        return Pipeline(src, batch_size=10)

    rows, stats = same_on_both(tmp_path, build, runs=({"limit": 20}, {}))
    assert len(rows["shout"]) == 50
    assert CALLS == {"words": 2 * 50, "shout": 2 * 50}  # each executor computed each row once
    assert stats["words"]["rows_in"] == 30 and stats["shout"]["rows_in"] == 30


@step(inputs=["instruction"], outputs=["fixed"])
def flaky(row, switch: str):
    CALLS["flaky"] += 1
    if row["instruction"].endswith(("0", "5")) and Path(switch).exists():
        raise RuntimeError("service down")
    return [{"fixed": 1}, {"fixed": 2}]


def test_retry_failed(tmp_path):
    switch = tmp_path / "down"
    switch.write_text("")

    def build():
        src = prompts(30)
        src >> flaky(switch=str(switch)) >> rank()
        return Pipeline(src, batch_size=10)

    same_on_both(tmp_path, build)
    switch.unlink()
    CALLS.clear()
    rows, stats = same_on_both(tmp_path, build, runs=({"retry_failed": True},))
    assert CALLS["flaky"] == 2 * 6 and CALLS["rank"] == 2
    assert stats["flaky"]["rows_in"] == 6 and stats["flaky"]["rows_cached"] == 48
    assert len(rows["rank"]) == 60 and not any(r["_error"] for r in rows["rank"])


@pytest.mark.parametrize("first, second", [("local", "sync"), ("sync", "local")])
def test_a_run_started_by_one_executor_resumes_with_the_other(tmp_path, first, second):
    def build():
        src = prompts(50)
        src >> words() >> shout() >> keep_columns(["instruction", "words", "shout"])
        return Pipeline(src, batch_size=10)

    run(build(), tmp_path / "reference", progress=False, executor=LocalExecutor())
    CALLS.clear()
    out = tmp_path / "run"
    run(build(), out, progress=False, executor=EXECUTORS[first](), limit=20)
    result = run(build(), out, progress=False, executor=EXECUTORS[second]())
    assert CALLS == {"words": 50, "shout": 50}  # the 20 rows of the first run were not computed again
    assert result.stats["words"]["rows_in"] == 30 and result.stats["keep_columns"]["rows_in"] == 30
    assert rows_of(out) == rows_of(tmp_path / "reference")
    again = run(build(), out, progress=False, executor=EXECUTORS[first]())
    assert CALLS == {"words": 50, "shout": 50}
    assert all(stats["rows_in"] == 0 for stats in again.stats.values())


@step(inputs=["instruction"], outputs=["x"], batch=True)
def broken(rows):
    return "not a list"


@pytest.mark.parametrize("name", list(EXECUTORS))
def test_a_failing_step_stops_the_run_and_records_it(tmp_path, name):
    src = prompts(20)
    src >> broken()
    with pytest.raises(NotosError, match="step 'broken' returned str"):
        run(Pipeline(src, batch_size=10), tmp_path / "r", progress=False, executor=EXECUTORS[name]())
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "broken" in manifest["error"]
    assert (tmp_path / "r" / "stats.json").exists()
