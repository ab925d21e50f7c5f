"""Whatever a path holds as one Arrow table, column-wise (for curation: 64k records in a second).

    table = read_table("runs/uf")          # a run's one leaf, a curate output, parts, a file, a saved dataset
    table = read_table("uf.parquet", columns=lambda paths: [...])   # read only some Parquet leaves
    write_table(table, "out/")             # out/data.parquet (+ data.jsonl): a curate output

`io.py` streams rows for pipelines; this reads whole tables, with Arrow's own readers, so nested
columns (UltraFeedback's completions) keep their types.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from notos.data.io import check_utf8, read_rows, write_rows
from notos.data.locate import Location, locate
from notos.errors import DataError

# Given a Parquet file's column paths ("completions.list.element.response", ...), the ones to read
# (None: all of them).
ColumnChoice = Callable[[list[str]], "list[str] | None"]


def read_table(path_or_location: str | Path | Location, columns: ColumnChoice | None = None) -> pa.Table:
    """One table from a file, a folder of parts, a run folder (its one leaf), a curate output or a
    saved `datasets` folder; hf:// is for the row readers (`io.iter_batches`)."""
    location = path_or_location if isinstance(path_or_location, Location) else locate(path_or_location)
    if location.kind == "hub":
        raise DataError(f"{location.spec}: read Hub datasets with notos.data.io.iter_batches or save them locally first")
    if location.kind == "saved":
        return _read_saved(location.spec)
    files = location.data_files()
    if location.format == "parquet":
        return read_parquet(list(files), location.spec, columns)
    if location.format == "csv":
        return table_from_rows([r for f in files for r in read_rows(str(f))], location.spec)
    tables = [read_json(f) for f in files]
    return tables[0] if len(tables) == 1 else _concat(tables, location.spec, "JSON files")


def read_parquet(files: list[Path], origin: str, columns: ColumnChoice | None = None) -> pa.Table:
    tables = []
    for file in files:
        try:
            wanted = _chosen_columns(file, columns) if columns else None
            tables.append(pq.ParquetFile(file).read(columns=wanted) if wanted else pq.read_table(file))
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{file}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    return tables[0] if len(tables) == 1 else _concat(tables, origin, "Parquet parts")


def read_json(path: Path) -> pa.Table:
    """JSON lines (Arrow's reader: fast, infers nested types) or a JSON array of objects."""
    import pyarrow.json as pajson

    check_utf8(path)  # Arrow's reader lets a bad byte through into the strings
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head != b"[":
        try:
            return pajson.read_json(path, read_options=pajson.ReadOptions(block_size=1 << 24))
        except pa.ArrowException:
            pass  # mixed types across rows or a malformed line: the row-wise reader says which
    return table_from_rows(read_rows(str(path)), str(path))


def table_from_rows(rows: list[dict], origin: str) -> pa.Table:
    if not rows:
        raise DataError(f"{origin}: no rows")
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowException, TypeError) as exc:
        raise DataError(f"{origin}: rows do not share one type per field ({str(exc).splitlines()[0]})") from None


def _chosen_columns(file: Path, choose: ColumnChoice) -> list[str] | None:
    schema = pq.ParquetFile(file).schema
    return choose([schema.column(i).path for i in range(len(schema))])


def _concat(tables: list[pa.Table], origin: str, what: str) -> pa.Table:
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise DataError(f"{origin}: {what} have clashing schemas ({str(exc).splitlines()[0]})") from None


def _read_saved(path: str) -> pa.Table:
    import datasets

    try:
        data = datasets.load_from_disk(path)
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"{path}: not a saved dataset ({exc})") from None
    if isinstance(data, datasets.DatasetDict):
        if len(data) != 1:
            raise DataError(f"{path}: dataset has splits {', '.join(data)}; pass one split's folder")
        data = next(iter(data.values()))
    return data.with_format("arrow")[:]  # honours a saved selection (indices mapping)


def write_table(table: pa.Table, out_dir, formats=("parquet", "jsonl")) -> list[Path]:
    """Write `data.parquet` (and `data.jsonl`) into out_dir, each atomically: the layout `locate`
    reads as a curate output. Returns the paths."""
    unknown = [f for f in formats if f not in ("parquet", "jsonl")]
    if unknown:
        raise DataError(f"unknown output format '{unknown[0]}' (use parquet or jsonl)")
    out = Path(out_dir)
    return [write_rows(str(out / f"data.{fmt}"), table) for fmt in formats]
