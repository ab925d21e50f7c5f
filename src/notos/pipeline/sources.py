"""Built-in source steps: rows from a file (or the Hub), or rows given inline."""

from notos.data.io import count_rows, iter_batches
from notos.pipeline.step import Step


def _read_file(path: str, split: str | None = None, id_column: str | None = None):
    yield from iter_batches(path, 1000, split)


def load_data(path: str, *, split: str | None = None, id_column: str | None = None, name: str = "load_data", **settings) -> Step:
    """Rows of a JSONL / JSON / Parquet / CSV file, a saved `datasets` folder, or `hf://owner/name`."""
    return Step(
        name=name,
        kind="source",
        fn=_read_file,
        options={"path": str(path), "split": split, "id_column": id_column},
        type_name="load_data",
        count=lambda: count_rows(str(path)),
        **settings,
    )


def _inline_rows(rows: list, id_column: str | None = None):
    yield [dict(row) for row in rows]


def from_rows(rows: list[dict], *, id_column: str | None = None, name: str = "from_rows", **settings) -> Step:
    """Rows given in Python or inline in YAML (`rows: [{instruction: ...}, ...]`)."""
    return Step(
        name=name,
        kind="source",
        fn=_inline_rows,
        options={"rows": list(rows), "id_column": id_column},
        type_name="from_rows",
        count=lambda: len(rows),
        **settings,
    )
