"""Built-in column steps: keep, rename, drop, filter, and group branches into list columns.

They are cheap and deterministic, so they do not cache their output (`cache=False`).
`row_id` and `_error` always survive: they are how rows are joined, resumed and audited.
"""

import operator
from functools import partial

from notos.errors import GraphError
from notos.pipeline.step import Step

RESERVED = ("row_id", "_error")


def _keep(rows, columns):
    wanted = list(RESERVED) + [c for c in columns if c not in RESERVED]
    return [{c: row[c] for c in wanted if c in row} for row in rows]


def keep_columns(columns: list[str], *, name: str = "keep_columns", **settings) -> Step:
    columns = list(columns)
    return Step(
        name=name, kind="map", fn=_keep, per_row=False, inputs={c: "any" for c in columns},
        options={"columns": columns}, type_name="keep_columns", cache=False,
        columns_after=lambda before: list(columns), **settings,
    )


def _rename(rows, mapping):
    return [{mapping.get(k, k): v for k, v in row.items()} for row in rows]


def rename_columns(mapping: dict[str, str], *, name: str = "rename_columns", **settings) -> Step:
    mapping = dict(mapping)
    for old in mapping:
        if old in RESERVED:
            raise GraphError(f"step '{name}': column '{old}' cannot be renamed")
    return Step(
        name=name, kind="map", fn=_rename, per_row=False, inputs={c: "any" for c in mapping},
        options={"mapping": mapping}, type_name="rename_columns", cache=False,
        columns_after=lambda before: [mapping.get(c, c) for c in before], **settings,
    )


def _drop(rows, columns):
    dropped = set(columns)
    return [{k: v for k, v in row.items() if k not in dropped} for row in rows]


def drop_columns(columns: list[str], *, name: str = "drop_columns", **settings) -> Step:
    columns = list(columns)
    for column in columns:
        if column in RESERVED:
            raise GraphError(f"step '{name}': column '{column}' cannot be dropped")
    return Step(
        name=name, kind="map", fn=_drop, per_row=False, inputs={c: "any" for c in columns},
        options={"columns": columns}, type_name="drop_columns", cache=False,
        columns_after=lambda before: [c for c in before if c not in columns], **settings,
    )


FILTER_OPS = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a, "is_null": lambda a, _: a is None, "not_null": lambda a, _: a is not None,
    "min_length": lambda a, b: len(a) >= b, "max_length": lambda a, b: len(a) <= b,
}


def _filter(rows, column, op, value=None):
    test = FILTER_OPS[op]
    return [row for row in rows if test(row[column], value)]


def filter_rows(column: str, op: str, value=None, *, name: str = "filter_rows", **settings) -> Step:
    """Keep the rows where `row[column] <op> value` holds (ops: see FILTER_OPS)."""
    if op not in FILTER_OPS:
        raise GraphError(f"step '{name}': unknown op '{op}' (ops: {', '.join(FILTER_OPS)})")
    return Step(
        name=name, kind="map", fn=_filter, per_row=False, inputs={column: "any"},
        options={"column": column, "op": op, "value": value}, type_name="filter_rows", cache=False, **settings,
    )


def join_group(parent_batches, columns, output_columns, allow_partial):
    """Join the parents' rows of one batch by row_id; gather `columns` into list columns.

    A row missing from a parent (routed elsewhere, or filtered) contributes nothing there.
    A row failed in any parent is failed here, unless `allow_partial` drops that parent's values.
    """
    order: dict[str, None] = {}  # row ids in first-seen order
    per_parent: list[dict] = []
    for rows in parent_batches:
        by_id = {row["row_id"]: row for row in rows or ()}
        per_parent.append(by_id)
        order.update(dict.fromkeys(by_id))
    out = []
    for rid in order:
        found = [p[rid] for p in per_parent if rid in p]
        errors = [r["_error"] for r in found if r.get("_error")]
        usable = [r for r in found if not r.get("_error")]
        base = {k: v for k, v in (usable or found)[0].items() if k not in columns}
        if errors and not (allow_partial and usable):
            base["_error"] = "; ".join(errors)
            out.append(base)
            continue
        for column, target in zip(columns, output_columns):
            base[target] = [r.get(column) for r in usable]
        out.append(base)
    return out


def group_columns(columns: list[str], output_columns: list[str] | None = None, *, allow_partial: bool = False,
                  name: str = "group_columns", **settings) -> Step:
    """Fan-in: one list column per grouped column, one entry per branch that has the row."""
    columns = list(columns)
    output_columns = list(output_columns or [f"grouped_{c}" for c in columns])
    if len(output_columns) != len(columns):
        raise GraphError(f"step '{name}': 'output_columns' must have as many names as 'columns' ({len(columns)})")
    return Step(
        name=name, kind="map", fn=_passthrough, per_row=False, inputs={c: "any" for c in columns},
        outputs=tuple(output_columns),
        options={"columns": columns, "output_columns": output_columns, "allow_partial": allow_partial},
        type_name="group_columns", cache=False,
        columns_after=lambda before: [c for c in before if c not in columns] + output_columns,
        join=partial(join_group, columns=columns, output_columns=output_columns, allow_partial=allow_partial),
        **settings,
    )


def _passthrough(rows, **_options):
    return rows
