"""Routing, fan-in, failure isolation, global steps, async and worker pools on real runs."""

import asyncio
from collections import Counter

import pytest

from notos.pipeline import Pipeline, from_rows, global_step, group_columns, keep_columns, load_run, run, sample_n, step


@step(inputs=["instruction"], outputs=["answer", "model"])
def generate(row, model="m"):
    return {"answer": f"{model}:{row['instruction']}", "model": model}


def prompts(n):
    return from_rows([{"instruction": f"question {i}"} for i in range(n)])


def route_pipeline(n_rows, seed, batch_size=10):
    src = prompts(n_rows)
    branches = [generate(name=f"g{i}", model=f"m{i}") for i in range(6)]
    group = group_columns(["answer", "model"], ["answers", "models"])
    src >> sample_n(3, seed=seed) >> branches
    branches >> group
    return Pipeline(src, name="route", batch_size=batch_size)


def test_sample_n_sends_each_batch_to_exactly_n_branches_and_spreads(tmp_path):
    result = run(route_pipeline(600, seed=7), tmp_path / "run", progress=False)
    data = load_run(tmp_path / "run")["group_columns"]
    assert result.rows["group_columns"] == 600
    usage = Counter()
    for row in data:
        assert len(row["models"]) == 3 and len(set(row["models"])) == 3
        assert row["answers"] == [f"{m}:{row['instruction']}" for m in row["models"]]
        usage.update(row["models"])
    # 60 batches x 3 picks over 6 branches: every branch is used, none dominates.
    assert set(usage) == {f"m{i}" for i in range(6)}
    assert max(usage.values()) < 2.2 * min(usage.values())
    # rows of one batch share the same choice
    by_batch = {}
    for i, row in enumerate(data):
        by_batch.setdefault(i // 10, set()).add(tuple(row["models"]))
    assert all(len(choices) == 1 for choices in by_batch.values())


def test_routing_is_reproducible_with_a_seed_and_changes_with_it(tmp_path):
    def choices(seed, out):
        run(route_pipeline(200, seed), tmp_path / out, progress=False)
        return [tuple(r["models"]) for r in load_run(tmp_path / out)["group_columns"]]

    assert choices(1, "a") == choices(1, "b")
    assert choices(1, "a") != choices(2, "c")


def test_fan_in_joins_by_row_id_even_when_branches_reorder_rows(tmp_path):
    @step(inputs=["instruction"], outputs=["upper"], batch=True)
    def upper_reversed(rows):
        return [{**r, "upper": r["instruction"].upper()} for r in reversed(rows)]

    @step(inputs=["instruction"], outputs=["length"])
    def length(row):
        return {"length": len(row["instruction"])}

    @step(inputs=["upper", "length"], outputs=["both"])
    def both(row):
        return {"both": f"{row['upper']}|{row['length']}"}

    src = prompts(35)
    src >> [upper_reversed(), length()] >> both()
    run(Pipeline(src, batch_size=8), tmp_path / "r", progress=False)
    for row in load_run(tmp_path / "r")["both"]:
        assert row["both"] == f"{row['instruction'].upper()}|{len(row['instruction'])}"


def test_a_failing_row_is_kept_marked_and_counted_the_rest_go_on(tmp_path):
    @step(inputs=["instruction"], outputs=["n"])
    def fragile(row):
        if row["instruction"].endswith("3"):
            raise ValueError("cannot handle threes")
        return {"n": len(row["instruction"])}

    @step(inputs=["n"], outputs=["double"])
    def double(row):
        return {"double": row["n"] * 2}

    src = prompts(40)
    src >> fragile() >> double()
    result = run(Pipeline(src, batch_size=10), tmp_path / "r", progress=False)
    data = load_run(tmp_path / "r")["double"].to_list()
    assert len(data) == 40
    failed = [r for r in data if r["_error"]]
    assert {r["instruction"] for r in failed} == {f"question {i}" for i in range(40) if str(i).endswith("3")}
    assert all(r["_error"] == "fragile: ValueError: cannot handle threes" and r["double"] is None for r in failed)
    assert all(r["double"] == 2 * len(r["instruction"]) for r in data if not r["_error"])
    assert result.stats["fragile"]["rows_failed"] == 4
    assert result.stats["double"]["rows_failed"] == 0  # passed through, not failed again


def test_a_failing_batch_step_fails_only_the_bad_rows(tmp_path):
    @step(inputs=["instruction"], outputs=["ok"], batch=True)
    def whole_batch(rows):
        if any(r["instruction"] == "question 5" for r in rows):
            raise RuntimeError("poison row in batch")
        return [{**r, "ok": True} for r in rows]

    src = prompts(20)
    src >> whole_batch()
    result = run(Pipeline(src, batch_size=10), tmp_path / "r", progress=False)
    data = load_run(tmp_path / "r")["whole_batch"].to_list()
    assert [r["instruction"] for r in data if r["_error"]] == ["question 5"]
    assert sum(1 for r in data if r["ok"]) == 19
    assert result.stats["whole_batch"]["rows_failed"] == 1


def test_per_row_step_can_drop_and_expand_rows(tmp_path):
    @step(inputs=["instruction"], outputs=["variant"])
    def variants(row):
        i = int(row["instruction"].split()[1])
        if i % 2:
            return None
        return [{"variant": "a"}, {"variant": "b"}]

    src = prompts(10)
    src >> variants()
    run(Pipeline(src, batch_size=4), tmp_path / "r", progress=False)
    data = load_run(tmp_path / "r")["variants"].to_list()
    assert len(data) == 10  # 5 even rows x 2 variants
    ids = [r["row_id"] for r in data]
    assert len(set(ids)) == 10 and all(i.endswith((".0", ".1")) for i in ids)


def test_async_steps_run_concurrently(tmp_path):
    in_flight = {"now": 0, "max": 0}

    @step(inputs=["instruction"], outputs=["slow"])
    async def slow(row):
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.02)
        in_flight["now"] -= 1
        return {"slow": row["instruction"][::-1]}

    src = prompts(200)
    src >> slow(concurrency=4, row_concurrency=16)
    result = run(Pipeline(src, batch_size=25), tmp_path / "r", progress=False)
    assert result.rows["slow"] == 200
    assert in_flight["max"] > 16  # several batches and several rows per batch at once
    # 200 sequential sleeps would take 4 s
    assert result.seconds < 3.5


def test_global_step_sees_every_row(tmp_path):
    @global_step(inputs=["instruction"], outputs=["rank"])
    def rank(rows):
        ordered = sorted(rows, key=lambda r: r["instruction"], reverse=True)
        return [{**r, "rank": i} for i, r in enumerate(ordered)]

    src = prompts(55)
    src >> rank() >> keep_columns(["instruction", "rank"])
    run(Pipeline(src, batch_size=10), tmp_path / "r", progress=False)
    data = load_run(tmp_path / "r")["keep_columns"].to_list()
    assert sorted(r["rank"] for r in data) == list(range(55))
    assert data[0]["instruction"] == "question 9"  # the largest string first


@pytest.mark.parametrize("workers", ["thread", "process"])
def test_sync_steps_in_worker_pools(tmp_path, workers):
    from notos.recipes.steps import tidy_instruction

    src = from_rows([{"instruction": f"  many   spaces {i} "} for i in range(30)])
    src >> tidy_instruction(workers=workers, concurrency=2)
    run(Pipeline(src, batch_size=7), tmp_path / "r", progress=False)
    data = load_run(tmp_path / "r")["tidy_instruction"].to_list()
    assert [r["instruction"] for r in data] == [f"many spaces {i}" for i in range(30)]


def test_changing_one_step_reruns_only_it_and_its_descendants(tmp_path):
    calls = Counter()

    @step(inputs=["instruction"], outputs=["a"])
    def first(row):
        calls["first"] += 1
        return {"a": 1}

    @step(inputs=["a"], outputs=["b"])
    def second(row, plus=1):
        calls["second"] += 1
        return {"b": row["a"] + plus}

    def build(plus):
        src = prompts(30)
        src >> first() >> second(plus=plus)
        return Pipeline(src, batch_size=10)

    run(build(1), tmp_path / "r", progress=False)
    assert calls == {"first": 30, "second": 30}
    run(build(1), tmp_path / "r", progress=False)
    assert calls == {"first": 30, "second": 30}  # nothing recomputed
    result = run(build(5), tmp_path / "r", progress=False)
    assert calls == {"first": 30, "second": 60}  # only the changed step
    assert result.stats["first"]["rows_cached"] == 30
    assert {r["b"] for r in load_run(tmp_path / "r")["second"]} == {6}


def test_editing_one_input_row_reruns_only_its_batch(tmp_path):
    calls = Counter()

    @step(inputs=["instruction"], outputs=["seen"])
    def record(row):
        calls[row["instruction"]] += 1
        return {"seen": True}

    data = [{"id": i, "instruction": f"q{i}"} for i in range(30)]

    def build(rows):
        src = from_rows(rows, id_column="id")
        src >> record()
        return Pipeline(src, batch_size=10)

    run(build(data), tmp_path / "r", progress=False)
    edited = [dict(r) for r in data]
    edited[15]["instruction"] = "changed"
    run(build(edited), tmp_path / "r", progress=False)
    assert sum(calls.values()) == 40  # 30 + the 10 rows of the edited batch
    assert calls["changed"] == 1
    assert [r["instruction"] for r in load_run(tmp_path / "r")["record"]][15] == "changed"
