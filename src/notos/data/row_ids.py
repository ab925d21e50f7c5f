"""Stable row ids: every row that enters a pipeline carries one through every step.

An id comes from a given id column when the data has one, else it is derived from the row's
position in its source and its content, so the same file always yields the same ids and two
identical rows at different positions still get different ones.
"""

import hashlib
import json

from notos.errors import DataError

ROW_ID = "row_id"


def derive_row_id(position: int, row: dict) -> str:
    content = json.dumps(row, sort_keys=True, default=str, ensure_ascii=False)
    digest = hashlib.blake2b(f"{position}\x00{content}".encode(), digest_size=8).hexdigest()
    return f"{position:08d}-{digest}"


def assign_row_ids(rows: list[dict], start: int, id_column: str | None, source: str, seen: set | None = None) -> list[dict]:
    """Give each row a `row_id`. `seen` (shared across batches) catches duplicate given ids."""
    for offset, row in enumerate(rows):
        if id_column:
            if id_column not in row:
                raise DataError(f"{source}: id column '{id_column}' is missing (columns: {', '.join(row)})")
            value = row[id_column]
            if value is None or value == "":
                raise DataError(f"{source}: id column '{id_column}' is empty at row {start + offset + 1}")
            row_id = str(value)
            if seen is not None:
                if row_id in seen:
                    raise DataError(f"{source}: id column '{id_column}' repeats the value '{row_id}' (row {start + offset + 1})")
                seen.add(row_id)
        else:
            row_id = derive_row_id(start + offset, row)
        row[ROW_ID] = row_id
    return rows
