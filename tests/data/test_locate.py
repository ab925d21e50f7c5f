"""`locate`: the one function that says what a path holds, and the readers that follow it.

Every kind on real folders laid out the way notos writes them (a run folder, a curate output,
parts, a saved dataset), then the same path read by each reader (rows for pipelines, one
table for curation, `load_run`) to show they agree.
"""

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from notos.data.io import count_rows, read_rows
from notos.data.locate import locate, part_order
from notos.data.tables import read_table
from notos.errors import DataError
from notos.pipeline.results import load_run

ROWS = [{"i": i, "text": f"row {i}"} for i in range(5)]


def write_parts(folder, rows, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name, chunk in zip(names, (rows[:2], rows[2:])):
        pq.write_table(pa.Table.from_pylist(chunk), folder / name)


def make_run(root, leaves: dict):
    """A `notos run` folder: manifest.json + data/<leaf>/part-N.parquet + _notos.json."""
    for leaf, rows in leaves.items():
        if rows is not None:
            write_parts(root / "data" / leaf, rows, ["part-000000.parquet", "part-000001.parquet"])
            (root / "data" / leaf / "_notos.json").write_text("{}")
    (root / "cache" / "x-0123").mkdir(parents=True)
    pq.write_table(pa.table({"junk": [1]}), root / "cache" / "x-0123" / "part-000000-abc.parquet")
    manifest = {"status": "finished", "leaves": {leaf: f"data/{leaf}" for leaf in leaves}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_a_file_is_its_format(tmp_path):
    for name, fmt in [("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("a.json", "json"), ("a.parquet", "parquet"),
                      ("a.pq", "parquet"), ("a.csv", "csv"), ("a.tsv", "csv")]:
        path = tmp_path / name
        path.write_text("x")
        loc = locate(path)
        assert (loc.kind, loc.format, loc.files) == ("file", fmt, (path,))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes.txt: unknown file type '.txt'"):
        locate(tmp_path / "notes.txt")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="file is empty"):
        locate(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="no such file or folder"):
        locate(tmp_path / "missing.jsonl")


def test_the_hub_is_named_not_touched():
    loc = locate("hf://owner/name:config")
    assert (loc.kind, loc.format, loc.files) == ("hub", "hub", ())


def test_a_run_folder_is_its_one_leaf_in_part_order(tmp_path):
    run = make_run(tmp_path / "run", {"records": ROWS})
    loc = locate(run)
    assert loc.kind == "run" and loc.format == "parquet" and loc.manifest["status"] == "finished"
    assert [f.name for f in loc.data_files()] == ["part-000000.parquet", "part-000001.parquet"]
    assert list(loc.leaves) == ["records"]
    # Every reader reads the leaf, not the cache.
    assert read_rows(str(run)) == ROWS
    assert count_rows(str(run)) == 5
    assert read_table(run).to_pylist() == ROWS
    assert load_run(run)["records"].to_list() == ROWS


def test_a_run_with_several_leaves_names_them(tmp_path):
    run = make_run(tmp_path / "run", {"a": ROWS, "b": ROWS[:1]})
    loc = locate(run)  # locating works: load_run reads every leaf
    assert set(loc.leaves) == {"a", "b"} and loc.files == ()
    with pytest.raises(DataError, match=r"run has leaves a, b; pass one of them as .*/run/data/<leaf>"):
        loc.data_files()
    with pytest.raises(DataError, match="run has leaves a, b"):
        read_rows(str(run))
    assert {k: len(v) for k, v in load_run(run).items()} == {"a": 5, "b": 1}
    # One leaf's folder is a folder of parts.
    leaf = locate(run / "data" / "b")
    assert leaf.kind == "parts" and [f.name for f in leaf.files] == ["part-000000.parquet", "part-000001.parquet"]


def test_a_run_leaf_without_data_yet(tmp_path):
    run = make_run(tmp_path / "run", {"late": None})
    loc = locate(run)
    assert loc.leaves == {"late": None}
    with pytest.raises(DataError, match=r"leaf 'late' has no data yet"):
        loc.data_files()
    (tmp_path / "run" / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match=r"manifest.json: not a readable run manifest"):
        locate(run)


def test_a_curate_output_is_its_data_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS), out / "data.parquet")
    (out / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    pq.write_table(pa.table({"reason": ["dup"]}), out / "removals.parquet")  # not data
    (out / "config.json").write_text(json.dumps({"tool": "notos curate"}))
    loc = locate(out)
    assert (loc.kind, loc.format, loc.files) == ("curate", "parquet", (out / "data.parquet",))
    assert read_rows(str(out)) == ROWS and read_table(out).to_pylist() == ROWS
    (out / "data.parquet").unlink()
    assert locate(out).files == (out / "data.jsonl",)


def test_parts_are_found_recursively_in_numeric_order_skipping_caches(tmp_path):
    folder = tmp_path / "pairs"
    write_parts(folder, ROWS, ["part-10.parquet", "part-9.parquet"])
    write_parts(folder / ".notos-ref-logps", ROWS, ["ref.parquet", "ref2.parquet"])
    write_parts(folder / "cache", ROWS, ["c1.parquet", "c2.parquet"])
    loc = locate(folder)
    assert loc.kind == "parts" and [f.name for f in loc.files] == ["part-9.parquet", "part-10.parquet"]
    assert read_rows(str(folder)) == ROWS[2:] + ROWS[:2]
    assert sorted(part_order(p) for p in loc.files)[0] == (0, 9, "")
    # JSONL parts when there is no Parquet.
    jsonl = tmp_path / "jsonl"
    (jsonl / "sub").mkdir(parents=True)
    (jsonl / "sub" / "b.jsonl").write_text(json.dumps(ROWS[1]) + "\n")
    (jsonl / "a.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    assert locate(jsonl).format == "jsonl" and read_rows(str(jsonl)) == ROWS[:2]
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="folder holds no Parquet files"):
        locate(tmp_path / "nothing")


def test_a_saved_dataset_is_read_by_datasets(tmp_path):
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    loc = locate(tmp_path / "saved")
    assert (loc.kind, loc.format, loc.files) == ("saved", "hf", ())
    assert read_rows(str(tmp_path / "saved")) == ROWS
    assert read_table(tmp_path / "saved").to_pylist() == ROWS


def test_load_run_refuses_what_is_not_a_run(tmp_path):
    (tmp_path / "plain").mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "plain" / "part-0.parquet")
    for path in (tmp_path / "plain", tmp_path / "missing"):
        with pytest.raises(Exception, match="not a notos run folder"):
            load_run(path)
