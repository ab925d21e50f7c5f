"""Data I/O on real files: round trips, batching, counts, atomic writes, errors and row ids.

Every test writes real files under `tmp_path` and reads them back through the public
functions of `notos.data.io` / `notos.data.row_ids` and the local executor's source helpers.
"""

import json
import os
import time

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from notos.data.io import count_rows, iter_batches, read_rows, write_rows
from notos.data.row_ids import ROW_ID, assign_row_ids, derive_row_id
from notos.errors import DataError
from notos.pipeline import Pipeline, load_data, load_run, run, step
from notos.pipeline.executors.reading import source_batches, with_row_ids

# Rows with every value kind a dataset row usually holds. Each row has the same keys and each
# column one type, so every format can hold them exactly.
ROWS = [
    {"text": "héllo wörld 🌍\nsecond line", "n": 1, "x": 0.1, "maybe": None, "tags": ["a", "ü"],
     "meta": {"source": "web", "score": 0.5, "inner": {"k": "v"}}},
    {"text": "", "n": -7, "x": -2.5e-300, "maybe": "set", "tags": [],
     "meta": {"source": "книга", "score": None, "inner": {"k": "line1\nline2"}}},
    {"text": "tab\there \"quoted\", comma", "n": 2**53 + 1, "x": 3.0, "maybe": None, "tags": ["日本語", "x\ny"],
     "meta": {"source": "", "score": 1.25, "inner": {"k": ""}}},
    {"text": "same", "n": 0, "x": 1e300, "maybe": "ok", "tags": ["only"],
     "meta": {"source": "api", "score": -0.0, "inner": {"k": "🙂"}}},
    {"text": "same", "n": 0, "x": 1e300, "maybe": "ok", "tags": ["only"],
     "meta": {"source": "api", "score": -0.0, "inner": {"k": "🙂"}}},  # a duplicate row on purpose
]

# CSV holds flat columns only; None sits in the numeric columns here (see the null-string test).
CSV_ROWS = [
    {"text": "héllo wörld 🌍\nsecond line", "n": 1, "x": 0.1},
    {"text": "tab\there \"quoted\", comma", "n": None, "x": -2.5},
    {"text": "日本語", "n": 3, "x": None},
    {"text": "plain", "n": -4, "x": 3.0},
]


def numbered_rows(count):
    return [{"i": i, "text": f"row {i} ✓"} for i in range(count)]


def concat(batches):
    return [row for batch in batches for row in batch]


def one_line(exc_info):
    message = str(exc_info.value)
    assert "\n" not in message, f"message is not one line: {message!r}"
    return message


def temp_files(folder):
    return sorted(p.name for p in folder.glob(".*.tmp-*"))


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".parquet", ".pq", ".json"])
def test_round_trip_through_a_file(tmp_path, suffix):
    path = tmp_path / f"rows{suffix}"
    assert write_rows(str(path), ROWS) == path
    assert path.is_file()
    assert read_rows(str(path)) == ROWS
    assert concat(iter_batches(str(path), batch_size=2)) == ROWS


def test_round_trip_through_a_json_array_file(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(ROWS, ensure_ascii=False, indent=2), encoding="utf-8")
    assert read_rows(str(path)) == ROWS
    assert [len(b) for b in iter_batches(str(path), batch_size=2)] == [2, 2, 1]


def test_a_json_file_with_one_object_is_one_row(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(ROWS[0], ensure_ascii=False), encoding="utf-8")
    assert read_rows(str(path)) == [ROWS[0]]


def test_write_rows_to_dot_json_writes_a_json_array(tmp_path):
    """A `.json` file is read as a JSON array; what write_rows puts there should be one too,
    so other tools (json.load, pandas.read_json) can open it."""
    path = tmp_path / "rows.json"
    write_rows(str(path), ROWS)
    assert json.loads(path.read_text(encoding="utf-8")) == ROWS


def test_csv_round_trip_of_flat_columns(tmp_path):
    path = tmp_path / "rows.csv"
    write_rows(str(path), CSV_ROWS)
    assert read_rows(str(path)) == CSV_ROWS
    assert concat(iter_batches(str(path), batch_size=3)) == CSV_ROWS


def test_csv_round_trip_keeps_none_and_empty_string_apart(tmp_path):
    """The CSV writer writes None as an empty field and "" as a quoted `""`; the reader
    should give them back as None and "" respectively."""
    rows = [{"text": "a", "note": None}, {"text": "b", "note": ""}, {"text": "c", "note": "x"}]
    path = tmp_path / "nulls.csv"
    write_rows(str(path), rows)
    assert read_rows(str(path)) == rows


def test_tsv_round_trip(tmp_path):
    path = tmp_path / "rows.tsv"
    write_rows(str(path), CSV_ROWS)
    assert read_rows(str(path)) == CSV_ROWS


def test_round_trip_through_a_folder_of_parquet_files(tmp_path):
    folder = tmp_path / "parts"
    write_rows(str(folder / "part-00000.parquet"), ROWS[:2])
    write_rows(str(folder / "part-00001.parquet"), ROWS[2:])
    assert read_rows(str(folder)) == ROWS
    assert concat(iter_batches(str(folder), batch_size=2)) == ROWS
    assert count_rows(str(folder)) == len(ROWS)


def test_round_trip_through_a_saved_hf_dataset(tmp_path):
    folder = tmp_path / "saved"  # no suffix: write_rows saves a `datasets` folder
    write_rows(str(folder), ROWS)
    assert folder.is_dir()
    assert (folder / "dataset_info.json").exists() or (folder / "state.json").exists()
    assert len(datasets.load_from_disk(str(folder))) == len(ROWS)
    assert read_rows(str(folder)) == ROWS
    assert concat(iter_batches(str(folder), batch_size=2)) == ROWS


def test_saved_dataset_dict_is_read_by_split(tmp_path):
    folder = tmp_path / "dict"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_list(ROWS[:3]),
        "test": datasets.Dataset.from_list(ROWS[3:]),
    }).save_to_disk(str(folder))
    assert read_rows(str(folder), split="train") == ROWS[:3]
    assert read_rows(str(folder), split="test") == ROWS[3:]
    assert concat(iter_batches(str(folder), batch_size=1, split="train")) == ROWS[:3]

    with pytest.raises(DataError) as exc:
        read_rows(str(folder))
    message = one_line(exc)
    assert str(folder) in message and "train" in message and "test" in message and "split" in message

    with pytest.raises(DataError) as exc:
        read_rows(str(folder), split="validation")
    message = one_line(exc)
    assert str(folder) in message and "validation" in message


def test_saved_dataset_dict_with_one_split_needs_no_split_name(tmp_path):
    folder = tmp_path / "single"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(folder))
    assert read_rows(str(folder)) == ROWS
    assert read_rows(str(folder), split="train") == ROWS


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_write_rows_keeps_keys_missing_from_the_first_row(tmp_path, suffix):
    """Rows need not all have the same keys (JSONL is schemaless; later rows of a source often
    gain optional fields). No column may be dropped silently."""
    rows = [{"a": 1}, {"a": 2, "extra": "kept?"}]
    path = tmp_path / f"ragged{suffix}"
    write_rows(str(path), rows)
    back = read_rows(str(path))
    assert back[1].get("extra") == "kept?", f"column 'extra' was lost: {back}"


# --- batching -----------------------------------------------------------------------------


def _write_numbered(tmp_path, fmt, rows):
    if fmt == "parquet-row-groups":
        path = tmp_path / "rows.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)
    elif fmt == "parquet-folder":
        path = tmp_path / "folder"
        for n, start in enumerate(range(0, len(rows), 10)):
            write_rows(str(path / f"part-{n:05d}.parquet"), rows[start : start + 10])
    elif fmt == "json-array":
        path = tmp_path / "rows.json"
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    elif fmt == "hf":
        path = tmp_path / "saved"
        write_rows(str(path), rows)
    else:
        path = tmp_path / f"rows.{fmt}"
        write_rows(str(path), rows)
    return str(path)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "parquet-row-groups", "parquet-folder", "csv", "json-array", "hf"])
@pytest.mark.parametrize("batch_size", [1, 3, 10, 23, 100])
def test_iter_batches_covers_every_row_once_in_order_in_batches_of_at_most_k(tmp_path, fmt, batch_size):
    rows = numbered_rows(23)
    path = _write_numbered(tmp_path, fmt, rows)
    batches = list(iter_batches(path, batch_size=batch_size))
    assert batches, "no batches"
    assert all(0 < len(batch) <= batch_size for batch in batches), [len(b) for b in batches]
    assert [row["i"] for row in concat(batches)] == list(range(23))
    assert concat(batches) == rows


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json-array", "hf"])
def test_iter_batches_is_fixed_size_for_single_stream_formats(tmp_path, fmt):
    path = _write_numbered(tmp_path, fmt, numbered_rows(23))
    assert [len(b) for b in iter_batches(path, batch_size=5)] == [5, 5, 5, 5, 3]


# --- count_rows ---------------------------------------------------------------------------


def test_count_rows_jsonl_ignores_blank_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in numbered_rows(7)]
    path.write_text("\n".join(lines[:3]) + "\n\n   \n" + "\n".join(lines[3:]) + "\n\n", encoding="utf-8")
    assert count_rows(str(path)) == 7
    assert len(read_rows(str(path))) == 7


def test_count_rows_parquet(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(numbered_rows(57)), path, row_group_size=10)
    assert count_rows(str(path)) == 57
    write_rows(str(tmp_path / "w.parquet"), ROWS)
    assert count_rows(str(tmp_path / "w.parquet")) == len(ROWS)


def test_count_rows_of_a_missing_file_is_unknown_not_an_error(tmp_path):
    assert count_rows(str(tmp_path / "missing.jsonl")) is None
    assert count_rows(str(tmp_path / "missing.parquet")) is None


# --- atomic writes ------------------------------------------------------------------------


@pytest.mark.parametrize("name,rows", [
    ("out.jsonl", ROWS), ("out.parquet", ROWS), ("out.csv", CSV_ROWS), ("out.json", ROWS),
])
def test_write_rows_leaves_no_temp_files(tmp_path, name, rows):
    target = tmp_path / name
    write_rows(str(target), rows)
    write_rows(str(target), rows[:1])  # overwrite in place
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert read_rows(str(target)) == rows[:1]


def test_write_rows_creates_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "rows.jsonl"
    write_rows(str(target), ROWS)
    assert read_rows(str(target)) == ROWS
    assert temp_files(target.parent) == []


def test_a_failed_write_leaves_no_temp_file_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.csv"
    write_rows(str(target), CSV_ROWS)
    before = target.read_bytes()
    with pytest.raises(Exception):
        write_rows(str(target), [{"nested": {"a": 1}}])  # CSV cannot hold a struct column
    assert target.read_bytes() == before
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("name,rows", [
    ("nested.csv", [{"nested": {"a": 1}}]),
    ("mixed.parquet", [{"v": 1}, {"v": "two"}]),
])
def test_a_write_the_user_caused_to_fail_is_a_data_error_naming_the_file(tmp_path, name, rows):
    target = tmp_path / name
    with pytest.raises(DataError) as exc:
        write_rows(str(target), rows)
    assert str(target) in one_line(exc)


# --- the Hub ------------------------------------------------------------------------------


def test_hub_path_without_network_is_a_one_line_data_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # `datasets` and `huggingface_hub` read the variable when imported (already done above),
    # so set their flags too or the call spends ~25 s retrying DNS before failing.
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    started = time.monotonic()
    with pytest.raises(DataError) as exc:
        next(iter_batches("hf://owner/name", batch_size=10))
    elapsed = time.monotonic() - started
    if elapsed > 30:
        pytest.skip(f"hub failure took {elapsed:.0f}s even offline")
    message = one_line(exc)
    assert "hf://owner/name" in message


# --- read errors --------------------------------------------------------------------------


def _raises_naming(path, *, split=None):
    with pytest.raises(DataError) as exc:
        list(iter_batches(str(path), batch_size=10, split=split))
    message = one_line(exc)
    assert str(path) in message, message
    return message


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.parquet", "missing.csv", "missing.json"])
def test_missing_file(tmp_path, name):
    assert "no such file" in _raises_naming(tmp_path / name)
    with pytest.raises(DataError):
        read_rows(str(tmp_path / name))


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.parquet", "empty.csv", "empty.json"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    assert "empty" in _raises_naming(path)


def test_blank_lines_only_jsonl(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n   \n\t\n\n", encoding="utf-8")
    assert "no rows" in _raises_naming(path)
    assert count_rows(str(path)) == 0


def test_invalid_json_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,}\n{"a": 3}\n', encoding="utf-8")
    assert "line 3" in _raises_naming(path)


def test_jsonl_line_that_is_an_array(tmp_path):
    path = tmp_path / "array.jsonl"
    path.write_text('{"a": 1}\n[1, 2, 3]\n', encoding="utf-8")
    message = _raises_naming(path)
    assert "line 2" in message and "list" in message


def test_json_file_with_non_object_items(tmp_path):
    path = tmp_path / "numbers.json"
    path.write_text("[1, 2, 3]", encoding="utf-8")
    _raises_naming(path)


def test_non_utf8_jsonl(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    message = _raises_naming(path)
    assert "UTF-8" in message and "line 2" in message


def test_non_utf8_csv_values(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,n\nok,1\ncaf\xe9,2\n")
    assert "UTF-8" in _raises_naming(path)


def test_non_utf8_csv_header(tmp_path):
    path = tmp_path / "latin1_header.csv"
    path.write_bytes(b"caf\xe9,n\nok,1\n")
    assert "UTF-8" in _raises_naming(path)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "rows.txt"
    path.write_text('{"a": 1}\n', encoding="utf-8")
    assert ".txt" in _raises_naming(path)


def test_corrupt_parquet_file(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(os.urandom(4096))
    _raises_naming(path)
    assert count_rows(str(path)) is None


def test_corrupt_parquet_file_in_a_folder_names_that_file(tmp_path):
    folder = tmp_path / "parts"
    write_rows(str(folder / "part-00000.parquet"), ROWS)
    bad = folder / "part-00001.parquet"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(DataError) as exc:
        read_rows(str(folder))
    assert str(bad) in one_line(exc)


def test_folder_that_is_no_dataset(tmp_path):
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi")
    _raises_naming(folder)


# --- row ids ------------------------------------------------------------------------------


def _ids(path, id_column=None):
    rows = read_rows(str(path))
    return [r[ROW_ID] for r in assign_row_ids(rows, 0, id_column, str(path), set())]


def test_derive_row_id_is_stable_and_ignores_key_order():
    row = {"b": 2, "a": "x", "nested": {"z": 1, "y": [1, 2]}}
    reordered = {"nested": {"y": [1, 2], "z": 1}, "a": "x", "b": 2}
    assert derive_row_id(5, row) == derive_row_id(5, dict(row)) == derive_row_id(5, reordered)
    assert derive_row_id(5, row) != derive_row_id(6, row)
    assert derive_row_id(5, row) != derive_row_id(5, {**row, "b": 3})


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_row_ids_are_stable_across_two_reads(tmp_path, suffix):
    path = tmp_path / f"rows{suffix}"
    write_rows(str(path), ROWS)
    first, second = _ids(path), _ids(path)
    assert first == second
    assert len(set(first)) == len(ROWS)


def test_identical_rows_at_different_positions_get_different_ids(tmp_path):
    path = tmp_path / "dupes.jsonl"
    write_rows(str(path), [{"text": "same"}] * 4)
    ids = _ids(path)
    assert len(set(ids)) == 4
    assert ROWS[3] == ROWS[4]
    rows = assign_row_ids([dict(r) for r in ROWS], 0, None, "mem")
    assert rows[3][ROW_ID] != rows[4][ROW_ID]


def test_row_ids_follow_the_position_across_batches():
    rows = [{"text": "same"} for _ in range(6)]
    whole = [r[ROW_ID] for r in assign_row_ids([dict(r) for r in rows], 0, None, "mem")]
    split = [r[ROW_ID] for r in assign_row_ids([dict(r) for r in rows[:4]], 0, None, "mem")]
    split += [r[ROW_ID] for r in assign_row_ids([dict(r) for r in rows[4:]], 4, None, "mem")]
    assert whole == split


def test_row_ids_from_an_id_column(tmp_path):
    path = tmp_path / "ids.jsonl"
    write_rows(str(path), [{"id": "q-1", "text": "a"}, {"id": "q-2", "text": "a"}, {"id": "q-3", "text": "b"}])
    assert _ids(path, "id") == ["q-1", "q-2", "q-3"]
    numeric = assign_row_ids([{"id": 7}, {"id": 8}], 0, "id", "mem", set())
    assert [r[ROW_ID] for r in numeric] == ["7", "8"]


def test_duplicate_given_id_names_the_column_and_value(tmp_path):
    rows = [{"qid": "a"}, {"qid": "dup-42"}, {"qid": "dup-42"}]
    with pytest.raises(DataError) as exc:
        assign_row_ids(rows, 0, "qid", "ids.jsonl", set())
    message = one_line(exc)
    assert "qid" in message and "dup-42" in message and "ids.jsonl" in message

    seen = set()  # across batches: the set is shared
    assign_row_ids([{"qid": "dup-42"}], 0, "qid", "ids.jsonl", seen)
    with pytest.raises(DataError) as exc:
        assign_row_ids([{"qid": "dup-42"}], 1, "qid", "ids.jsonl", seen)
    assert "qid" in str(exc.value) and "dup-42" in str(exc.value)


def test_missing_id_column(tmp_path):
    with pytest.raises(DataError) as exc:
        assign_row_ids([{"text": "a"}], 0, "qid", "ids.jsonl", set())
    message = one_line(exc)
    assert "qid" in message and "ids.jsonl" in message


def test_empty_id_value():
    with pytest.raises(DataError) as exc:
        assign_row_ids([{"qid": "a"}, {"qid": ""}], 0, "qid", "ids.jsonl", set())
    assert "qid" in one_line(exc) and "row 2" in str(exc.value)


# --- load_data through the executor's source helpers --------------------------------------


def _source(step_, batch_size, limit=None):
    return list(with_row_ids(step_, source_batches(step_, batch_size, limit)))


@pytest.fixture
def big_jsonl(tmp_path):
    """2,500 rows: more than the 1,000 rows load_data reads at a time."""
    path = tmp_path / "big.jsonl"
    write_rows(str(path), numbered_rows(2500))
    return path


@pytest.mark.parametrize("limit", [0, 1, 6, 7, 8, 999, 1000, 1001, 2499, 2500, 9999])
def test_limit_caps_rows_exactly(big_jsonl, limit):
    batches = _source(load_data(str(big_jsonl)), 7, limit)
    rows = concat(batches)
    assert len(rows) == min(limit, 2500)
    assert [r["i"] for r in rows] == list(range(min(limit, 2500)))


@pytest.mark.parametrize("batch_size", [1, 7, 333, 1000, 1024, 5000])
def test_batch_boundaries_are_fixed_size(big_jsonl, batch_size):
    batches = _source(load_data(str(big_jsonl)), batch_size)
    sizes = [len(b) for b in batches]
    assert all(size == batch_size for size in sizes[:-1]), sizes
    assert 0 < sizes[-1] <= batch_size
    assert sum(sizes) == 2500


def test_batch_boundaries_are_fixed_size_when_the_file_yields_uneven_chunks(tmp_path):
    folder = tmp_path / "uneven"
    rows = numbered_rows(1000)
    for n, (start, stop) in enumerate([(0, 333), (333, 583), (583, 1000)]):
        write_rows(str(folder / f"part-{n:05d}.parquet"), rows[start:stop])
    assert [len(b) for b in iter_batches(str(folder), 1000)] == [333, 250, 417]  # uneven chunks
    batches = _source(load_data(str(folder)), 64)
    assert [len(b) for b in batches] == [64] * 15 + [40]
    assert [r["i"] for r in concat(batches)] == list(range(1000))


def test_derived_ids_do_not_depend_on_batch_size_or_limit(big_jsonl):
    def ids(batch_size, limit=None):
        return [r[ROW_ID] for r in concat(_source(load_data(str(big_jsonl)), batch_size, limit))]

    all_ids = ids(7)
    assert len(set(all_ids)) == 2500
    assert ids(1000) == all_ids
    assert ids(333, limit=1200) == all_ids[:1200]
    assert ids(7) == all_ids  # stable across reads


def test_id_column_through_load_data(tmp_path):
    path = tmp_path / "ids.parquet"
    write_rows(str(path), [{"qid": f"q{i}", "text": "same"} for i in range(20)])
    rows = concat(_source(load_data(str(path), id_column="qid"), 6))
    assert [r[ROW_ID] for r in rows] == [f"q{i}" for i in range(20)]


def test_duplicate_id_across_batches_through_load_data(tmp_path):
    path = tmp_path / "ids.jsonl"
    rows = [{"qid": f"q{i}"} for i in range(20)] + [{"qid": "q3"}]
    write_rows(str(path), rows)
    with pytest.raises(DataError) as exc:
        _source(load_data(str(path), id_column="qid"), 6)
    message = one_line(exc)
    assert "qid" in message and "q3" in message


def test_missing_id_column_through_load_data(tmp_path):
    path = tmp_path / "ids.jsonl"
    write_rows(str(path), [{"text": "a"}])
    with pytest.raises(DataError) as exc:
        _source(load_data(str(path), id_column="qid"), 6)
    assert "qid" in one_line(exc)


def test_rows_that_carry_row_ids_keep_them(tmp_path):
    path = tmp_path / "previous.parquet"
    rows = [{ROW_ID: f"earlier-{i:04d}", "text": "same"} for i in range(25)]
    write_rows(str(path), rows)
    for batch_size in (4, 25, 100):
        got = concat(_source(load_data(str(path)), batch_size))
        assert [r[ROW_ID] for r in got] == [r[ROW_ID] for r in rows]


@step(inputs=["text"], outputs=["length"])
def text_length(row):
    return {"length": len(row["text"])}


def test_rows_from_an_earlier_notos_run_keep_their_ids(tmp_path):
    source_file = tmp_path / "source.jsonl"
    write_rows(str(source_file), numbered_rows(50))
    first = load_data(str(source_file))
    first >> text_length()
    run(Pipeline(first, name="first", batch_size=8), tmp_path / "run1", progress=False)
    earlier = load_run(tmp_path / "run1")["text_length"].to_list()
    assert len(earlier) == 50 and all(r[ROW_ID] for r in earlier)

    # the run's output folder (part-*.parquet) read again as a source, with another batch size
    again = concat(_source(load_data(str(tmp_path / "run1" / "data" / "text_length")), 13))
    assert sorted(r[ROW_ID] for r in again) == sorted(r[ROW_ID] for r in earlier)
    by_id = {r[ROW_ID]: r for r in earlier}
    assert all(by_id[r[ROW_ID]]["i"] == r["i"] for r in again)


def test_check_utf8_names_the_line_across_chunks(tmp_path):
    """The check reads in chunks: a character split between two chunks is fine, and the line of
    a bad byte counts the newlines of every chunk before it."""
    from notos.data.io import check_utf8

    path = tmp_path / "rows.jsonl"
    good = "".join(json.dumps({"text": f"é猫 {i}"}, ensure_ascii=False) + "\n" for i in range(40)).encode()
    path.write_bytes(good)
    for size in (1, 2, 3, 7, 64, 1 << 20):
        check_utf8(path, chunk_size=size)
    path.write_bytes(good + b'{"text": "caf\xe9"}\n')
    for size in (1, 5, 64, 1 << 20):
        with pytest.raises(DataError) as exc:
            check_utf8(path, chunk_size=size)
        assert one_line(exc) == f"{path}: line 41 is not valid UTF-8"
    path.write_bytes(good[:-1] + b"\xe7\x8c")  # the file ends inside a character
    with pytest.raises(DataError, match="line 40 is not valid UTF-8"):
        check_utf8(path, chunk_size=16)


def test_non_utf8_json_array_names_the_line(tmp_path):
    path = tmp_path / "rows.json"
    path.write_bytes(b'[\n {"a": "ok"},\n {"a": "caf\xe9"}\n]\n')
    message = _raises_naming(path)
    assert "UTF-8" in message and "line 3" in message
