"""`retry_failed`: rows that failed in an earlier run go through their steps again; the rest stay."""

from pathlib import Path

from notos.pipeline import from_rows, global_step, load_run, run, step

CALLS: list[str] = []


@step(inputs=["x"], outputs=["y"])
def flaky(row, switch: str):
    CALLS.append(f"flaky:{row['row_id']}")
    if row["x"] % 3 == 0 and Path(switch).exists():
        raise RuntimeError("service down")
    return {"y": row["x"] * 10}


@step(inputs=["y"], outputs=["part"])
def split_in_two(row):
    CALLS.append(f"split:{row['row_id']}")
    return [{"part": row["y"] + 1}, {"part": row["y"] + 2}]


@global_step(inputs=["part"], outputs=["rank"])
def rank(rows):
    CALLS.append("rank")
    ordered = sorted(rows, key=lambda r: r["part"])
    return [{**r, "rank": i} for i, r in enumerate(ordered)]


def build(switch):
    source = from_rows(rows=[{"x": i} for i in range(10)], id_column=None)
    return source >> flaky(switch=str(switch)) >> split_in_two() >> rank()


def test_only_failed_rows_are_computed_again(tmp_path):
    switch = tmp_path / "down"
    switch.write_text("")
    out = tmp_path / "run"
    first = run(build(switch), out, progress=False)
    rows = load_run(out)["rank"].to_list()
    failed = [r for r in rows if r["_error"]]
    assert first.stats["flaky"]["rows_failed"] == 4 and len(failed) == 4  # x = 0, 3, 6, 9
    assert all(r["_error"] == "flaky: RuntimeError: service down" for r in failed)

    switch.unlink()  # the service is back
    CALLS.clear()
    run(build(switch), out, progress=False)  # a plain resume does not retry
    assert CALLS == [] and len([r for r in load_run(out)["rank"].to_list() if r["_error"]]) == 4

    CALLS.clear()
    again = run(build(switch), out, progress=False, retry_failed=True)
    flaky_calls = sorted(c for c in CALLS if c.startswith("flaky"))
    split_calls = [c for c in CALLS if c.startswith("split")]
    assert len(flaky_calls) == 4 and len(split_calls) == 4 and CALLS.count("rank") == 1
    rows = load_run(out)["rank"].to_list()
    assert all(r["_error"] is None for r in rows) and len(rows) == 20
    assert sorted(r["part"] for r in rows) == sorted(p for x in range(10) for p in (x * 10 + 1, x * 10 + 2))
    assert [r["rank"] for r in sorted(rows, key=lambda r: r["part"])] == list(range(20))
    assert again.stats["flaky"]["rows_cached"] == 6

    CALLS.clear()
    run(build(switch), out, progress=False, retry_failed=True)
    assert CALLS == []  # nothing failed any more: nothing to do


def test_rows_still_failing_stay_failed_and_kept_rows_keep_their_order(tmp_path):
    switch = tmp_path / "down"
    switch.write_text("")
    out = tmp_path / "run"
    run(from_rows(rows=[{"x": i} for i in range(7)]) >> flaky(switch=str(switch)), out, progress=False)
    before = load_run(out)["flaky"].to_list()
    CALLS.clear()
    run(from_rows(rows=[{"x": i} for i in range(7)]) >> flaky(switch=str(switch)), out, progress=False, retry_failed=True)
    assert sorted(CALLS) == sorted(f"flaky:{r['row_id']}" for r in before if r["_error"])
    after = load_run(out)["flaky"].to_list()
    assert [r["row_id"] for r in after] == [r["row_id"] for r in before]
    assert [r["_error"] for r in after] == [r["_error"] for r in before]
