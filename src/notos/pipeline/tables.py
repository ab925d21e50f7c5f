"""Rows to Arrow tables that Parquet can always store, whatever the rows hold.

A step may return an empty dict (a struct with no fields), a column that is null in every row,
or one column with values of several types across rows. None of that may crash a commit or the
final data swap: empty structs become null, an all-null column gets Arrow's null type, and in a
mixed column the type most rows have wins while each row that does not fit is failed with
`_error` (its value kept as JSON text where the column holds strings).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from notos.data.atomic import atomic_file

T = TypeVar("T")
_arrow_thread: tuple[int, ThreadPoolExecutor, list] | None = None  # (pid, the pool, its thread's id)
_arrow_lock = threading.Lock()


def on_arrow_thread(fn: Callable[..., T], *args) -> T:
    """`fn(*args)` on the one thread of this process that turns committed batches into Parquet
    and back; what it returns, or raises. The calling thread waits for it.

    Why one thread: Parquet's writer and reader allocate through Arrow's C++ default pool, which
    stays mimalloc once pyarrow is imported (`configure_arrow` can only change the pool Python
    calls use), and mimalloc keeps a heap per thread that it hands little back from. Commits
    spread over the event loop's executor threads held ~55 MB more at a run's peak than the
    same commits on one thread (bench/ultrafeedback_full.py --n 2000: 192 vs 138 MB). The
    callers still write and fsync the bytes themselves, so commits overlap on the disk."""
    global _arrow_thread
    with _arrow_lock:
        if _arrow_thread is None or _arrow_thread[0] != os.getpid():  # none yet, or made before a fork
            ident: list = []
            pool = ThreadPoolExecutor(1, thread_name_prefix="notos-arrow",
                                      initializer=lambda: ident.append(threading.get_ident()))
            _arrow_thread = (os.getpid(), pool, ident)
        _pid, pool, ident = _arrow_thread
    if ident and ident[0] == threading.get_ident():  # called from the Arrow thread itself
        return fn(*args)
    return pool.submit(fn, *args).result()


def rows_to_table(rows: list[dict], step: str = "store") -> pa.Table:
    """The rows of one batch as a table Parquet can store, whatever the rows hold.

    - A column that only some rows have (a failed row lacks its step's outputs) is kept: the
      columns are the union of all rows' keys (from_pylist would take the first row's).
    - An empty dict (a struct with no fields, which Parquet cannot write) is stored as null,
      wherever it is nested; an all-null column is stored as Arrow's null type.
    - A column whose values have mixed types (a list among strings) keeps the type most rows
      have; each row whose value does not fit fails, with the reason in `_error`, its value
      stored as JSON text (in a string column) or null. The row dicts are updated in place, so
      the rows passed on to later steps are the rows stored.
    """
    names = list(dict.fromkeys(k for row in rows for k in row))
    reasons: dict[int, list[str]] = {}
    arrays = {k: _storable_array(step, k, rows, reasons) for k in names if k != "_error"}
    if reasons or "_error" in names:
        for i, why in reasons.items():
            old = rows[i].get("_error")
            rows[i]["_error"] = "; ".join(([str(old)] if old else []) + why)[:500]
        errors = [row.get("_error") for row in rows]
        arrays["_error"] = pa.array([None if e is None else str(e) for e in errors], type=pa.string())
    return pa.Table.from_pydict({k: arrays[k] for k in dict.fromkeys([*names, *(["_error"] if reasons else [])])})


def _storable_array(step: str, name: str, rows: list[dict], reasons: dict[int, list[str]]) -> pa.Array:
    values = [row.get(name) for row in rows]
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        array = _mixed_array(step, name, rows, values, reasons)
    if _has_empty_struct(array.type):
        values = [_empty_to_none(v) for v in values]
        for row, value in zip(rows, values):
            if name in row:
                row[name] = value
        array = pa.array(values)
    return array


def _kind(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"  # ints and floats store together (as floats)
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, (str, bool, bytes)):
        return {str: "str", bool: "bool", bytes: "bytes"}[type(value)]
    return type(value).__name__


def _fits(value, type_: pa.DataType) -> bool:
    try:
        pa.array([value], type=type_)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return False
    return True


def _misfit(value, type_: pa.DataType):
    """What is stored in place of a value that does not fit its column: JSON text in a string
    column (nothing is lost), else null."""
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return json.dumps(value, default=str, ensure_ascii=False)
    return None


def _mixed_array(step: str, name: str, rows: list[dict], values: list, reasons: dict[int, list[str]]) -> pa.Array:
    """A column of mixed types: the kind most rows have wins; the other rows fail."""
    counts: dict[str, int] = {}
    for v in values:
        if v is not None:
            counts[_kind(v)] = counts.get(_kind(v), 0) + 1
    type_, kind = pa.string(), "str"
    for candidate in sorted(counts, key=lambda k: -counts[k]):
        try:
            type_ = pa.array([v for v in values if v is not None and _kind(v) == candidate]).type
            kind = candidate
            break
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            continue
    out = []
    for i, (row, v) in enumerate(zip(rows, values)):
        if v is None or _fits(v, type_):
            out.append(v)
            continue
        stored = _misfit(v, type_)
        how = "stored as JSON text" if stored is not None else "not stored"
        reasons.setdefault(i, []).append(f"{step}: column '{name}' holds a {_kind(v)} value where the other rows hold {kind} ({how})")
        row[name] = stored
        out.append(stored)
    return pa.array(out, type=type_)


def _has_empty_struct(type_: pa.DataType) -> bool:
    if pa.types.is_struct(type_):
        return type_.num_fields == 0 or any(_has_empty_struct(type_.field(i).type) for i in range(type_.num_fields))
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        return _has_empty_struct(type_.value_type)
    if pa.types.is_map(type_):
        return _has_empty_struct(type_.key_type) or _has_empty_struct(type_.item_type)
    return False


def _empty_to_none(value):
    if isinstance(value, dict):
        return {k: _empty_to_none(v) for k, v in value.items()} if value else None
    if isinstance(value, (list, tuple)):
        return [_empty_to_none(v) for v in value]
    return value


def unify_part_schemas(files: list[Path]) -> None:
    """Give every part of a leaf one schema, so other tools (pyarrow, pandas, `datasets`) read
    the folder as one table: a batch whose values were all None has a null-typed column where
    the next batch has strings. Only parts that differ are rewritten, as new files: the cache
    files they were hard-linked to stay untouched.

    Parts whose types cannot be unified (a batch of lists where the others hold strings) are
    unified as `rows_to_table` does within a batch: the type of most rows wins, and the rows
    whose value does not fit fail with the reason in `_error`."""
    first = None
    for f in files:  # footers only, one at a time: a 64k-row leaf has a thousand parts
        text = str(pq.read_schema(f))
        if first is None:
            first = text
        elif text != first:
            break
    else:
        return  # one schema already (the usual case)
    schemas = [pq.read_schema(f) for f in files]
    conflicts: dict[str, pa.DataType] = {}
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowException, TypeError):
        unified, conflicts = _unify_by_majority(files, schemas)
    for path, schema in zip(files, schemas):
        if schema.equals(unified):
            continue
        # Through Python rows: pyarrow's own promotion of nested structs builds invalid arrays.
        rows = pq.read_table(path).to_pylist()
        for name, type_ in conflicts.items():
            for row in rows:
                value = row.get(name)
                if value is not None and not _fits(value, type_):
                    row[name] = stored = _misfit(value, type_)
                    how = "stored as JSON text" if stored is not None else "not stored"
                    why = f"column '{name}' holds a {_kind(value)} value where other batches hold {type_} ({how})"
                    row["_error"] = "; ".join(([str(row["_error"])] if row.get("_error") else []) + [why])[:500]
        table = pa.Table.from_pylist(rows, schema=unified)
        with atomic_file(path) as tmp:
            pq.write_table(table, tmp)


def _unify_by_majority(files: list[Path], schemas: list[pa.Schema]) -> tuple[pa.Schema, dict[str, pa.DataType]]:
    """A schema for parts that do not unify: per conflicting column, the type of most rows."""
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    fields: dict[str, list[tuple[pa.DataType, int]]] = {}
    for schema, size in zip(schemas, sizes):
        for field in schema:
            fields.setdefault(field.name, []).append((field.type, size))
    result, conflicts = [], {}
    for name, typed in fields.items():
        one = [pa.schema([pa.field(name, t)]) for t, _ in typed]
        try:
            result.append(pa.unify_schemas(one, promote_options="permissive").field(name))
            continue
        except (pa.ArrowException, TypeError):
            pass
        weight: dict[str, tuple[pa.DataType, int]] = {}
        for t, size in typed:
            if not pa.types.is_null(t):
                weight[str(t)] = (t, weight.get(str(t), (t, 0))[1] + size)
        winner = max(weight.values(), key=lambda tw: tw[1])[0]
        joined = [pa.schema([pa.field(name, winner)])]
        for t, _ in typed:  # the types that unify with the winner (null, a narrower struct) join it
            try:
                pa.unify_schemas([*joined, pa.schema([pa.field(name, t)])], promote_options="permissive")
                joined.append(pa.schema([pa.field(name, t)]))
            except (pa.ArrowException, TypeError):
                pass
        field = pa.unify_schemas(joined, promote_options="permissive").field(name)
        result.append(field)
        conflicts[name] = field.type
    if "_error" not in fields:
        result.append(pa.field("_error", pa.string()))
    return pa.schema(result), conflicts
