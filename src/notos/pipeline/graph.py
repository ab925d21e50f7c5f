"""A pipeline is the set of steps connected by `>>`, checked before anything runs.

There is no global pipeline object that steps register into: `Pipeline(*steps)` walks the
connections from the steps it is given. `validate()` stops a bad graph with one line that
names the step and the column or option: duplicate names, cycles, unconnected steps,
missing or mistyped input columns, fan-in that would silently overwrite a column.
"""

from __future__ import annotations

import hashlib
from itertools import islice

from notos.errors import GraphError
from notos.pipeline.step import Step, type_name_of

DEFAULT_BATCH_SIZE = 50
# Run folders record the scheme their fingerprints were made with. 2: built-in steps are
# identified by type name and version, not by their source (see Step.code_identity);
# executors/migrate.py carries a scheme-1 folder's cache over once.
FINGERPRINT_SCHEME = 2


class Pipeline:
    def __init__(self, *steps: Step, name: str = "pipeline", batch_size: int = DEFAULT_BATCH_SIZE):
        if not steps:
            raise GraphError("a pipeline needs at least one step")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise GraphError(f"pipeline '{name}': batch_size must be a positive integer")
        self.name, self.batch_size = name, batch_size
        _topological_order(_reachable(steps))  # a cycle is reported as such, even one off to the side
        self.steps = _topological_order(_connected(steps))
        self.by_name = {s.name: s for s in self.steps}

    @property
    def sources(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "source"]

    @property
    def leaves(self) -> list[Step]:
        return [s for s in self.steps if not s.children]

    def validate(self, peek: bool = True) -> dict[str, dict[str, str]]:
        """Check the graph; returns the columns (name -> type) after each step."""
        _check_structure(self.steps)
        columns: dict[str, dict[str, str]] = {}
        origins: dict[str, dict[str, str]] = {}
        for step in self.steps:
            columns[step.name] = _columns_after(step, columns, origins, peek)
        return columns

    def fingerprints(self, data_ids: dict[str, str] | None = None) -> dict[str, str]:
        """hash(own config + parents' fingerprints): a change reruns the step and what follows.

        A global step sees every row at once, so its fingerprint also covers the identity of
        the source data above it (`data_ids`: source name -> hash of all its batches).
        """
        result: dict[str, str] = {}
        for step in self.steps:
            result[step.name] = self.fingerprint(step, [result[p.name] for p in step.parents], data_ids)
        return result

    def fingerprint(self, step: Step, parent_fingerprints: list[str], data_ids: dict[str, str] | None = None) -> str:
        """One step's fingerprint, given its parents' (see `fingerprints`)."""
        if step.kind == "source":
            # A source's batches are content-addressed (see store.batch_signature): where the
            # rows came from does not matter, only what they are and how they are cut.
            parts = [f"source|batch_size={self.batch_size}"]
        else:
            parts = [step.own_hash(), *parent_fingerprints]
        if step.kind == "global" and data_ids:
            parts.extend(data_ids.get(s.name, "") for s in _ancestor_sources(step))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def segment_root(self, step: Step) -> Step:
        """The source or global step whose batches this step sees (batch ids count from it)."""
        return _root(step)


def _reachable(starts) -> list[Step]:
    for step in starts:
        if not isinstance(step, Step):
            raise GraphError(f"Pipeline() takes steps, got {step!r}")
    seen: dict[int, Step] = {}
    stack = list(starts)
    while stack:
        step = stack.pop()
        if id(step) not in seen:
            seen[id(step)] = step
            stack.extend(step.parents + step.children)
    return list(seen.values())


def _connected(given) -> list[Step]:
    seen: dict[int, Step] = {}
    stack = [given[0]]
    while stack:
        step = stack.pop()
        if id(step) in seen:
            continue
        seen[id(step)] = step
        stack.extend(step.parents + step.children)
    for step in given:
        if id(step) not in seen:
            raise GraphError(f"step '{step.name}' is not connected to step '{given[0].name}'")
    return list(seen.values())


def _topological_order(steps: list[Step]) -> list[Step]:
    names: dict[str, Step] = {}
    for step in steps:
        if step.name in names:
            raise GraphError(f"two steps are named '{step.name}': give each step a unique name")
        names[step.name] = step
    indegree = {id(s): len(s.parents) for s in steps}
    ready = [s for s in steps if not s.parents]
    order = []
    while ready:
        step = ready.pop(0)
        order.append(step)
        for child in step.children:
            indegree[id(child)] -= 1
            if indegree[id(child)] == 0:
                ready.append(child)
    if len(order) != len(steps):
        stuck = sorted(s.name for s in steps if indegree[id(s)] > 0)
        raise GraphError(f"the pipeline has a cycle through step '{stuck[0]}' (steps in it or after it: {', '.join(stuck)})")
    return order


def _check_structure(steps: list[Step]) -> None:
    if not any(s.kind == "source" for s in steps):
        raise GraphError("the pipeline has no source step (load_data, from_rows or a @source function)")
    for step in steps:
        if step.kind != "source" and not step.parents:
            raise GraphError(f"step '{step.name}' has no input: connect it after another step")
        if step.kind == "route":
            if not step.children:
                raise GraphError(f"step '{step.name}' routes batches but has no branches after it")
            if step.options["n"] > len(step.children):
                raise GraphError(f"step '{step.name}': option 'n' is {step.options['n']} but it has only {len(step.children)} branches")
        if step.kind == "global" and len(step.parents) > 1:
            raise GraphError(f"step '{step.name}' is a global step with several inputs: join them first (e.g. group_columns)")
        if len(step.parents) > 1:
            roots = {_root(p).name for p in step.parents}
            if len(roots) > 1:
                raise GraphError(f"step '{step.name}' joins branches that start from different sources or global steps ({', '.join(sorted(roots))}): rows can only be joined within one batch stream")


def _ancestor_sources(step: Step) -> list[Step]:
    found, stack, seen = [], [step], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.kind == "source":
            found.append(node)
        stack.extend(node.parents)
    return sorted(found, key=lambda s: s.name)


def _root(step: Step) -> Step:
    while step.kind not in ("source", "global"):
        step = step.parents[0]
    return step


def peek_columns(step: Step) -> dict[str, str]:
    """The columns of a source, read from its first row (a file's first batch)."""
    first = next(islice(iter(step.fn(**step.options)), 1), None)
    if isinstance(first, list):
        first = first[0] if first else None
    if first is None:
        return {c: "any" for c in step.outputs}
    if not isinstance(first, dict):
        raise GraphError(f"source '{step.name}' yields {type(first).__name__}, expected dicts (rows)")
    cols = {k: type_name_of(v) for k, v in first.items()}
    for c in step.outputs:
        cols.setdefault(c, "any")
    return cols


def _columns_after(step: Step, done: dict, origins: dict, peek: bool) -> dict[str, str]:
    """Columns (name -> type) after `step`; `origins` records which step added each column."""
    if step.kind == "source":
        available = {"row_id": "str", **(peek_columns(step) if peek else {c: "any" for c in step.outputs})}
        origins[step.name] = dict.fromkeys(available, step.name)
        return available
    parent_cols = [done[p.name] for p in step.parents]
    if len(parent_cols) > 1:
        available, origin = _join_columns(step, parent_cols, [origins[p.name] for p in step.parents])
    else:
        available, origin = dict(parent_cols[0]), dict(origins[step.parents[0].name])
    for column, wanted in step.inputs.items():
        for cols in parent_cols if step.join is not None else [available]:
            if column not in cols:
                have = ", ".join(c for c in cols if c != "row_id") or "none"
                raise GraphError(f"step '{step.name}' needs column '{column}', which its input does not have (columns: {have})")
            actual = cols[column]
            if wanted != "any" and actual not in ("any", "null") and not _compatible(actual, wanted):
                raise GraphError(f"step '{step.name}': column '{column}' holds {actual} values, expected {wanted}")
    if step.columns_after is not None:
        names = step.columns_after([c for c in available if c != "row_id"])
        result = {"row_id": "str", **{c: available.get(c, "any") for c in names}}
    else:
        result = {**available, **{c: "any" for c in step.outputs}}
    origins[step.name] = {c: origin.get(c, step.name) if c not in step.outputs else step.name for c in result}
    return result


def _compatible(actual: str, wanted: str) -> bool:
    wanted = wanted.rstrip("?")
    return actual == wanted or (wanted == "float" and actual == "int")


def _join_columns(step: Step, parent_cols: list[dict], parent_origins: list[dict]):
    """Columns after a fan-in. Without group_columns, two branches adding one column is an error."""
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    for parent, cols, where in zip(step.parents, parent_cols, parent_origins):
        for column, type_name in cols.items():
            if column in origin and origin[column] != where[column] and step.join is None:
                raise GraphError(
                    f"step '{step.name}': column '{column}' comes from both '{origin[column]}' and '{where[column]}'; "
                    "use group_columns to collect it into a list, or rename it in one branch"
                )
            origin.setdefault(column, where[column])
            merged.setdefault(column, type_name)
    return merged, origin
