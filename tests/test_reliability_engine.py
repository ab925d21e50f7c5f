"""Reliability of the engine (issue 13, items 1, 2 and 8), with real components: real Parquet,
the real store and executors, the loopback LLM server (tests/fake_llm_server.py).

1. Rows whose columns Parquet cannot store as they are (an empty dict, a struct with no
   fields, None everywhere) never crash a commit: the run goes on, failed rows keep `_error`.
2. A row of the wrong type (an `instruction` that is a list or null) fails alone, with a
   reason, before any request; mixed types within a batch or across batches are stored; a
   failure at the final data swap leaves no "running" manifest and no `.LEAF.new`, and a
   rerun finishes.
8. `notos show` tells an interrupted run from a running one, names a corrupt manifest, and
   stats.json keeps per-folder totals across resumes.
"""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from notos.errors import NotosError
from notos.pipeline import Pipeline, SyncExecutor, from_rows, load_run, run, step
from notos.pipeline.store import RunStore
from notos.pipeline.tables import rows_to_table
from notos.report import console as console_module
from notos.report.console import print_run_folder
from notos.tasks import text_generation, ultrafeedback_rating, ultrafeedback_records


def llm(server):
    return {"backend": "openai", "base_url": server.base_url, "model": "m", "max_retries": 0}


def leaf_files(out, leaf):
    return sorted((out / "data" / leaf).glob("part-*.parquet"))


def assert_clean_finish(out):
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert not list((out / "data").glob(".*.new")) and not list(out.rglob(".*.tmp-*"))


# -- 1. empty structs and all-null columns ---------------------------------------------------
@step(outputs=["raw", "nested", "many", "nothing"])
def unstorable(row):
    return {"raw": {}, "nested": {"a": {}, "b": None}, "many": [{}, {}], "nothing": None}


@pytest.mark.parametrize("executor", [None, SyncExecutor()], ids=["local", "sync"])
def test_empty_structs_and_all_null_columns_are_stored(tmp_path, executor):
    data = [{"instruction": f"q{i}"} for i in range(5)]
    out = tmp_path / "r"
    run(from_rows(rows=data) >> unstorable(name="u"), out, progress=False,
        **({"executor": executor} if executor else {}))
    assert_clean_finish(out)
    rows = load_run(out)["u"].to_list()
    assert len(rows) == 5
    assert rows[0]["raw"] is None and rows[0]["nested"] == {"a": None, "b": None}
    assert rows[0]["many"] == [None, None] and rows[0]["nothing"] is None


def test_rows_to_table_never_yields_an_unwritable_table(tmp_path):
    rows = [{"row_id": "a", "s": {}, "deep": [{"x": {}}], "_error": "g: HTTP 500"},
            {"row_id": "b", "s": {}, "deep": [], "_error": "g: HTTP 500"}]
    table = rows_to_table(rows, "g")
    pq.write_table(table, tmp_path / "t.parquet")  # raised ArrowNotImplementedError before
    back = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert [r["_error"] for r in back] == ["g: HTTP 500", "g: HTTP 500"]
    assert back[0]["deep"] == [{"x": None}]


def test_every_rating_request_failing_fails_the_rows_and_the_run_goes_on(llm_server, tmp_path):
    # Every request of every row gets HTTP 500; a second batch mixes failures and answers, so
    # the leaf's parts have different schemas (the failed batch lacks the rating columns).
    data = [{"instruction": f"[500] q{i}", "generations": [f"[500] a{i} [4]", f"[500] b{i} [2]"]} for i in range(4)]
    data += [{"instruction": f"q{i}", "generations": [f"a{i} [4]", f"b{i} [2]"]} for i in range(4, 8)]
    pipeline = Pipeline(from_rows(rows=data) >> ultrafeedback_rating(llm=llm(llm_server), name="rate"), batch_size=4)
    out = tmp_path / "r"
    run(pipeline, out, progress=False)
    assert_clean_finish(out)
    rows = {r["instruction"]: r for r in load_run(out)["rate"].to_list()}
    assert len(rows) == 8
    for i in range(4):
        assert rows[f"[500] q{i}"]["_error"] == "rate: HTTP 500 internal failure"
        assert rows[f"[500] q{i}"]["rating_raw"] is None
    for i in range(4, 8):
        assert rows[f"q{i}"]["_error"] is None and rows[f"q{i}"]["ratings"] == [4, 2]
    assert pq.read_schema(leaf_files(out, "rate")[0]) == pq.read_schema(leaf_files(out, "rate")[1])


def test_a_batch_whose_every_rating_fails_reaches_the_records(llm_server, tmp_path):
    # A batch of only failed rows passes the records step with none of its columns, the next
    # batch with them all: the leaf's parts are unified and the failed rows keep their reason.
    data = [{"instruction": f"[500] q{i}", "generations": [f"a{i}", f"b{i}"], "generation_models": ["m1", "m2"]}
            for i in range(4)]
    data += [{"instruction": f"q{i}", "generations": [f"a{i} [5]", f"b{i} [1]"], "generation_models": ["m1", "m2"]}
             for i in range(4, 8)]
    rate = ultrafeedback_rating(llm=llm(llm_server), name="rate", aspects=["honesty"])
    out = tmp_path / "r"
    run(Pipeline(from_rows(rows=data) >> rate >> ultrafeedback_records(name="records"), batch_size=4), out, progress=False)
    assert_clean_finish(out)
    rows = {r["instruction"]: r for r in load_run(out)["records"].to_list()}
    assert rows["[500] q0"]["_error"] == "rate: HTTP 500 internal failure"
    assert rows["[500] q0"]["completions"] is None
    assert rows["q4"]["_error"] is None and rows["q4"]["completions"][0]["annotations"]["honesty"]["Rating"] == "5"


# -- 2. rows of the wrong type ----------------------------------------------------------------
def test_a_wrong_typed_instruction_fails_its_row_before_any_request(llm_server, tmp_path):
    data = [{"instruction": "good one"}, {"instruction": ["a", "list"]}, {"instruction": None}, {"instruction": "good two"}]
    gen = text_generation(llm=llm(llm_server), name="gen")
    out = tmp_path / "r"
    run(from_rows(rows=data) >> gen, out, progress=False)
    assert_clean_finish(out)
    assert len(llm_server.requests) == 2  # no request for the bad rows
    rows = {row["row_id"]: row for row in load_run(out)["gen"].to_list()}
    errors = sorted(r["_error"] or "" for r in rows.values())
    assert errors[:2] == ["", ""]
    assert errors[2].startswith("gen: column 'instruction' is list, expected str; ")  # then: stored as JSON text
    assert errors[3] == "gen: column 'instruction' is null, expected str"
    # The list was stored as its JSON text (the column is a string column), not lost.
    assert sorted(str(r["instruction"]) for r in rows.values()) == sorted(['["a", "list"]', "None", "good one", "good two"])
    # A rerun finishes (nothing recomputed), and so does one retrying the failed rows.
    run(from_rows(rows=data) >> text_generation(llm=llm(llm_server), name="gen"), out, progress=False)
    assert_clean_finish(out)
    run(from_rows(rows=data) >> text_generation(llm=llm(llm_server), name="gen"), out, progress=False, retry_failed=True)
    assert_clean_finish(out)
    assert len(llm_server.requests) == 2


@step(outputs=["echo"])
def untyped(row):  # declares no input types: whatever the rows hold goes through
    return {"echo": row["instruction"]}


def test_mixed_types_across_batches_are_unified_with_the_odd_rows_failed(tmp_path):
    # Batch 0 holds strings, batch 1 lists, batch 2 strings: no batch is mixed, the leaf is.
    data = [{"instruction": f"s{i}"} for i in range(4)] + [{"instruction": [f"l{i}"]} for i in range(2)] + \
           [{"instruction": f"t{i}"} for i in range(2)]
    out = tmp_path / "r"
    for _ in range(2):  # the rerun finishes too
        run(Pipeline(from_rows(rows=data) >> untyped(name="echo"), batch_size=2), out, progress=False)
        assert_clean_finish(out)
        rows = load_run(out)["echo"].to_list()
        assert len(rows) == 8
        bad = [r for r in rows if r["_error"]]
        assert len(bad) == 2 and all("column 'instruction' holds a list value" in r["_error"] for r in bad)
        assert sorted(r["instruction"] for r in bad) == ['["l0"]', '["l1"]']
    schemas = {str(pq.read_schema(f)) for f in leaf_files(out, "echo")}
    assert len(schemas) == 1


def test_a_mixed_batch_commits_with_the_odd_rows_failed(tmp_path):
    store = RunStore(tmp_path / "r")
    store.open({"pipeline": "p", "steps": {}, "leaves": []}, "")
    rows = [{"row_id": "a", "x": "text"}, {"row_id": "b", "x": ["a", "list"]}, {"row_id": "c", "x": "more"},
            {"row_id": "d", "x": 3}]
    store.commit("s", "f" * 64, 0, "0" * 12, rows)
    back = {r["row_id"]: r for r in store.load("s", "f" * 64, 0, "0" * 12)}
    assert back["a"] == {"row_id": "a", "x": "text", "_error": None}
    assert back["b"]["x"] == '["a", "list"]' and "column 'x' holds a list value" in back["b"]["_error"]
    assert back["d"]["x"] == "3" and back["d"]["_error"].startswith("s: column 'x'")
    assert store.has_failures("s", "f" * 64, 0, "0" * 12)
    assert rows[1]["_error"] == back["b"]["_error"]  # the rows passed on are the rows stored


def test_a_failure_at_the_data_swap_leaves_no_running_manifest_and_a_rerun_finishes(tmp_path, monkeypatch):
    data = [{"instruction": f"q{i}"} for i in range(4)]
    out = tmp_path / "r"

    def broken(self, new, *args):
        (new / "part-000000.parquet").write_bytes(b"half")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(RunStore, "_fill", broken)
        with pytest.raises(OSError, match="disk full"):
            run(from_rows(rows=data) >> untyped(name="echo"), out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "disk full" in manifest["error"]
    assert not list((out / "data").glob(".*"))
    run(from_rows(rows=data) >> untyped(name="echo"), out, progress=False)
    assert_clean_finish(out)
    assert len(load_run(out)["echo"].to_list()) == 4


# -- 8. notos show, stats totals ---------------------------------------------------------------
def shown(out, capsys):
    capsys.readouterr()
    print_run_folder(out)
    return capsys.readouterr().out


@pytest.fixture
def wide_console(monkeypatch):
    from rich.console import Console

    monkeypatch.setattr(console_module, "console", Console(width=200, soft_wrap=True, force_terminal=False))


def test_show_says_interrupted_for_a_run_whose_process_is_gone(tmp_path, capsys, wide_console):
    data = [{"instruction": f"q{i}"} for i in range(6)]
    out = tmp_path / "r"
    run(Pipeline(from_rows(rows=data) >> untyped(name="echo"), batch_size=2), out, progress=False)
    assert "process" in json.loads((out / "manifest.json").read_text())
    assert "complete" in shown(out, capsys).splitlines()[0]
    # A run killed mid-way: its manifest says running, its process is gone.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.update(status="running", process={**manifest["process"], "pid": dead.pid})
    (out / "manifest.json").write_text(json.dumps(manifest))
    text = shown(out, capsys)
    assert "interrupted" in text.splitlines()[0] and f"pid {dead.pid}" in text.splitlines()[0]
    assert "echo: 3 batches, 6 rows" in text
    # This process is alive: the same manifest naming it says running.
    from notos.pipeline.store import process_start

    manifest["process"] = {**manifest["process"], "pid": os.getpid(), "started": process_start(os.getpid())}
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert f"running (pid {os.getpid()})" in shown(out, capsys).splitlines()[0]


def test_show_names_a_corrupt_manifest_in_one_line(tmp_path, cli):
    out = tmp_path / "r"
    run(from_rows(rows=[{"instruction": "q"}]) >> untyped(name="echo"), out, progress=False)
    (out / "manifest.json").write_text('{"status": "compl')
    with pytest.raises(NotosError, match="manifest.json: unreadable run manifest"):
        print_run_folder(out)
    result = cli("show", out)
    assert result.returncode == 2, result.stderr
    assert "manifest.json" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_stats_keep_totals_across_resumes(tmp_path, capsys, wide_console):
    data = [{"instruction": f"q{i}"} for i in range(6)]
    out = tmp_path / "r"
    run(Pipeline(from_rows(rows=data[:4]) >> untyped(name="echo"), batch_size=2), out, progress=False)
    run(Pipeline(from_rows(rows=data) >> untyped(name="echo"), batch_size=2), out, progress=False)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["echo"]["rows_in"] == 2  # the last invocation computed the new batch only
    assert stats["_totals"]["echo"]["rows_in"] == 6 and stats["_totals"]["echo"]["invocations"] == 2
    text = shown(out, capsys)
    assert "per-step totals" in text
    assert not any(line.lstrip("│┃ ").startswith("_totals") for line in text.splitlines())  # not a step row


def test_an_optional_input_takes_null_and_a_required_one_fails_the_row(tmp_path):
    """`str?` declares a column some rows leave empty (a system prompt); `str` requires a value."""
    @step(inputs={"text": "str", "system": "str?"}, outputs=["seen"])
    def both(row):
        return {"seen": f"{row['system'] or '-'}:{row['text']}"}

    rows = [{"id": n, "text": t, "system": s} for n, (t, s) in enumerate([("a", None), ("b", "s"), (None, "s"), ("d", 3)])]
    run(from_rows(rows, id_column="id") >> both(), tmp_path / "r", progress=False)
    got = sorted(load_run(tmp_path / "r")["both"].to_list(), key=lambda r: r["id"])
    assert [r["seen"] for r in got[:2]] == ["-:a", "s:b"]
    assert "column 'text' is null, expected str" in got[2]["_error"]
    assert "column 'system' is int, expected str?" in got[3]["_error"]


def test_a_row_failed_at_commit_is_counted_in_the_stats(tmp_path):
    data = [{"instruction": "s0"}, {"instruction": ["a", "list"]}, {"instruction": "s1"}]
    result = run(Pipeline(from_rows(rows=data) >> untyped(name="echo"), batch_size=4), tmp_path / "r", progress=False)
    rows = load_run(tmp_path / "r")["echo"].to_list()
    assert sum(1 for r in rows if r["_error"]) == 1
    assert result.stats["echo"]["rows_failed"] == 1


def test_an_empty_leaf_keeps_its_columns(tmp_path):
    from notos.pipeline import filter_rows

    data = [{"instruction": "short"}, {"instruction": "tiny"}]
    pipeline = from_rows(rows=data) >> untyped(name="echo") >> filter_rows("echo", "==", "never", name="none")
    result = run(pipeline, tmp_path / "r", progress=False)
    assert result.rows["none"] == 0
    table = load_run(tmp_path / "r")["none"]
    assert len(table) == 0 and {"row_id", "instruction", "echo"} <= set(table.column_names)
