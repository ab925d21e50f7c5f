"""Reading a source: fixed-size batches, each row with a stable id, each batch signed.

Batch boundaries depend only on `batch_size` and the data, and a batch's signature only on its
rows, so a rerun cuts the same batches and finds them committed: the basis of resume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from notos.data.row_ids import assign_row_ids
from notos.errors import NotosError
from notos.pipeline.step import Step
from notos.pipeline.store import batch_signature


def source_batches(step: Step, batch_size: int, limit: int | None) -> Iterator[list[dict]]:
    """Re-chunk whatever the source yields (rows or lists of rows) into fixed-size batches."""
    pending: list[dict] = []
    produced = 0
    for item in step.fn(**step.options):
        rows = item if isinstance(item, list) else [item]
        for row in rows:
            if not isinstance(row, dict):
                raise NotosError(f"source '{step.name}' yielded {type(row).__name__}, expected dicts (rows)")
        if limit is not None:
            rows = rows[: max(0, limit - produced - len(pending))]
        pending.extend(rows)
        # Slice by offset and cut the list once per item: a source that yields one huge list
        # would otherwise cost quadratic time.
        start = 0
        while len(pending) - start >= batch_size:
            produced += batch_size
            yield pending[start : start + batch_size]
            start += batch_size
        pending = pending[start:]
        if limit is not None and produced + len(pending) >= limit:
            break
    if pending:
        yield pending


def with_row_ids(step: Step, batches: Iterator[list[dict]]) -> Iterator[list[dict]]:
    """Fresh copies of the rows with a `row_id` each: from the source's id column, kept from
    an earlier notos run, or the row's position."""
    position, seen = 0, set()
    id_column = step.options.get("id_column")
    label = f"{step.options['path']} (source '{step.name}')" if step.options.get("path") else f"source '{step.name}'"
    for batch in batches:
        fresh = [dict(row) for row in batch]
        for row in fresh:
            row.pop("_error", None)
        if not id_column and all("row_id" in row for row in fresh):
            assign_row_ids(fresh, position, "row_id", label, seen)  # rows from an earlier notos run keep their ids
        else:
            assign_row_ids(fresh, position, id_column, label, seen)
        position += len(fresh)
        yield fresh


def read_source(step: Step, batch_size: int, limit: int | None) -> Iterator[tuple[list[dict], str]]:
    """A source's batches in order, with row ids, each with its signature. Reading and hashing
    cost CPU and disk: an event loop should call `next` on this from a thread."""
    for rows in with_row_ids(step, source_batches(step, batch_size, limit)):
        yield rows, batch_signature(rows)


def data_identity(step: Step, batch_size: int, limit: int | None) -> str:
    """A hash of all of a source's batches: part of a global step's fingerprint, since a global
    step's output depends on every row at once."""
    h = hashlib.sha256()
    for _rows, sig in read_source(step, batch_size, limit):
        h.update(sig.encode())
    return h.hexdigest()
