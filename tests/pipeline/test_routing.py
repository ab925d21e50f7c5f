"""Per-row routing: each row draws its n of k branches from (seed, row id), so a resume, another
batch size or another executor draws the same; every branch still gets every batch index."""

from collections import Counter

import pytest

from notos.errors import GraphError
from notos.pipeline import (
    Pipeline,
    SyncExecutor,
    from_rows,
    group_columns,
    load_run,
    run,
    sample_n,
    step,
)
from notos.pipeline.routing import draw, route_rows


@step(inputs=["instruction"], outputs=["answer", "model"])
def answer(row, model="m"):
    return {"answer": f"{model}:{row['instruction']}", "model": model}


def pipeline(n_rows: int, batch_size: int, seed: int = 0, branches: int = 6, n: int = 3) -> Pipeline:
    src = from_rows([{"id": f"r{i:04d}", "instruction": f"question {i}"} for i in range(n_rows)], id_column="id")
    pool = [answer(name=f"g{i}", model=f"m{i}") for i in range(branches)]
    src >> sample_n(n, seed=seed, per="row") >> pool
    pool >> group_columns(["answer", "model"], ["answers", "models"])
    return Pipeline(src, name="per_row", batch_size=batch_size)


def models_by_id(out) -> dict[str, tuple]:
    return {r["row_id"]: tuple(r["models"]) for r in load_run(out)["group_columns"]}


def test_draws_are_n_distinct_branches_spread_evenly_and_stable():
    picks = [draw(f"r{i}", 6, 3, seed=0) for i in range(6000)]
    assert all(len(set(p)) == 3 and p == sorted(p) and all(0 <= b < 6 for b in p) for p in picks)
    combos = Counter(tuple(p) for p in picks)
    assert len(combos) == 20 and max(combos.values()) < 1.3 * min(combos.values())  # all C(6,3), evenly
    assert draw("r1", 6, 3, seed=0) == draw("r1", 6, 3, seed=0) == [2, 4, 5]  # pinned: a resume draws the same
    assert sum(draw(f"r{i}", 6, 3, seed=0) != draw(f"r{i}", 6, 3, seed=1) for i in range(100)) > 50


def test_route_rows_keeps_input_order_and_every_branch_gets_its_list():
    rows = [{"row_id": f"r{i}"} for i in range(50)]
    out = route_rows(0, rows, 6, n=3, seed=0, per="row")
    assert len(out) == 6 and sum(len(part) for part in out) == 150
    for part in out:
        positions = [rows.index(r) for r in part]
        assert positions == sorted(positions)
    assert route_rows(0, [], 6, n=3, per="row") == [[]] * 6
    by_batch = route_rows(4, rows, 6, n=3, seed=0, per="batch")
    assert sum(1 for part in by_batch if part) == 3 and all(part in ([], rows) for part in by_batch)


def test_each_row_gets_its_own_branches_whatever_the_batch_size(tmp_path):
    result = run(pipeline(300, batch_size=100), tmp_path / "big", progress=False)
    got = models_by_id(tmp_path / "big")
    assert result.rows["group_columns"] == 300 and len(got) == 300
    assert all(len(set(m)) == 3 for m in got.values())
    assert len(set(got.values())) == 20  # rows of one batch do not share one choice
    usage = Counter(m for models in got.values() for m in models)
    assert max(usage.values()) < 1.3 * min(usage.values())
    assert sum(result.stats[f"g{i}"]["rows_in"] for i in range(6)) == 900
    assert all(result.stats[f"g{i}"]["batches"] == 3 for i in range(6))  # every branch saw every batch
    run(pipeline(300, batch_size=7), tmp_path / "small", progress=False, executor=SyncExecutor())
    assert models_by_id(tmp_path / "small") == got
    for r in load_run(tmp_path / "big")["group_columns"]:
        assert r["answers"] == [f"{m}:{r['instruction']}" for m in r["models"]]


def test_a_resume_routes_each_row_as_before(tmp_path):
    out = tmp_path / "run"
    run(pipeline(120, batch_size=40), out, progress=False)
    first = models_by_id(out)
    again = run(pipeline(120, batch_size=40), out, progress=False)
    assert all(again.stats[f"g{i}"]["rows_in"] == 0 for i in range(6))
    assert models_by_id(out) == first


def test_per_batch_routing_is_kept_and_per_is_checked():
    assert "per" not in sample_n(2).options  # routes written before per-row keep their fingerprints
    assert sample_n(2, per="row").options["per"] == "row"
    with pytest.raises(GraphError, match="option 'per' must be one of row, batch"):
        sample_n(2, per="prompt")
