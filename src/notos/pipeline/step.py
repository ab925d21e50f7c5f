"""The step contract.

A step is a plain function plus a declaration: the columns it needs, the columns it adds,
its options. Kinds:
- source: yields rows (or batches of rows); row ids are given by the executor.
- map:    per row (`fn(row, **options) -> dict | list[dict] | None`: new columns, several
          children, or nothing to drop the row) or per batch (`fn(rows, **options) -> rows`),
          sync or async.
- global: sees the whole dataset at once (`fn(rows, **options) -> rows`): dedup, binarize.
- route:  sends each batch to some of its children (see `sample_n`).
Steps know nothing of executors, stores or resume.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from notos.errors import GraphError

KINDS = ("source", "map", "global", "route")
WORKERS = ("inline", "thread", "process")
TYPE_CHECKS = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, (list, tuple)),
    "dict": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}


def accepts(wanted: str, value) -> bool:
    """Whether a value fits a declared input type; `str?` (any type with `?`) also takes null:
    an optional column (a system prompt some rows have)."""
    if value is None:
        return wanted == "any" or wanted.endswith("?")
    return TYPE_CHECKS[wanted.rstrip("?")](value)


def type_name_of(value) -> str:
    for name in ("bool", "int", "float", "str", "list", "dict"):
        if TYPE_CHECKS[name](value):
            return name
    return "null" if value is None else type(value).__name__


@dataclass(eq=False)
class Step:
    name: str
    kind: str
    fn: Callable
    inputs: dict[str, str] = field(default_factory=dict)  # column -> type name ("any" = unchecked)
    outputs: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)
    type_name: str = "python"  # how YAML names it: a catalog type name, or "python" with `fn: module:function`
    per_row: bool = True
    concurrency: int = 1  # batches in flight at once in this step
    row_concurrency: int = 64  # rows in flight at once within a batch (async per-row steps)
    workers: str = "inline"  # where sync work runs: the event loop, a thread pool or a process pool
    cache: bool = True  # commit this step's batches so a rerun (or a changed descendant) reuses them
    # Where a cluster executor places the step (Ray: num_cpus, num_gpus, memory, replicas,
    # in_flight); the local executors ignore it. Not part of the fingerprint.
    resources: dict = field(default_factory=dict)
    # For column steps: the columns after this step, given the columns before it.
    columns_after: Callable[[list[str]], list[str]] | None = None
    # For fan-in steps with their own way to combine parents (group_columns).
    join: Callable[[list[list[dict] | None]], list[dict]] | None = None
    count: Callable[[], int | None] | None = None  # sources: row count for progress bars, if cheap
    ref: str = ""  # "module:function" of a Python step, for YAML and the fingerprint
    # Built-in steps: part of the fingerprint instead of the source; bump it when the step's
    # results change for the same options (Python steps are fingerprinted by their source).
    version: int = 1
    # Awaited once when a run ends, however it ends: e.g. closing an LLM client's sessions.
    teardown: Callable[[], Awaitable[None]] | None = None
    # The part of the options that decides the results, for the fingerprint: connection
    # settings (timeouts, concurrency) can change on resume without recomputing anything.
    hash_options: Callable[[dict], dict] | None = None
    # How many of an output row's answers could not be read (a judge's rating that does not
    # parse): counted in the stats, and `retry_unparsed` asks those rows again. None: never.
    unparsed: Callable[[dict], int] | None = None
    parents: list[Step] = field(default_factory=list, repr=False)
    children: list[Step] = field(default_factory=list, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise GraphError(f"step '{self.name}': unknown kind '{self.kind}'")
        if self.workers not in WORKERS:
            raise GraphError(f"step '{self.name}': option 'workers' must be one of {', '.join(WORKERS)}")
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise GraphError(f"step '{self.name}': option 'concurrency' must be a positive integer")

    # Graph building: `a >> b`, `a >> [b, c]`, `[b, c] >> d`.
    def __rshift__(self, other):
        if isinstance(other, (list, tuple)):
            for child in other:
                connect(self, child)
            return list(other)
        connect(self, other)
        return other

    def __rrshift__(self, other):
        if isinstance(other, (list, tuple)):
            for parent in other:
                connect(parent, self)
            return self
        return NotImplemented

    def __repr__(self):
        return f"Step({self.name!r}, kind={self.kind!r})"

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def code_identity(self) -> str:
        """What of the code goes into the fingerprint.

        A Python step (`type_name == "python"`) is its source: editing it reruns it. A built-in
        step is its type name and `version`, not its source, so refactoring notos does not
        void every user's cache; whoever changes what a built-in returns bumps its `version`.
        """
        if self.type_name != "python":
            return f"{self.type_name}@{self.version}"
        try:
            source = inspect.getsource(self.fn)
        except (OSError, TypeError):
            source = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"{self.type_name}:{getattr(self.fn, '__module__', '')}:{source}:{self.ref}"

    def own_hash(self) -> str:
        options = self.hash_options(self.options) if self.hash_options else self.options
        if self.type_name != "python":
            # An option left unset is no option: a built-in type that gains an option (default
            # None) keeps the fingerprints of the steps that do not use it. (Python steps hash
            # as they did under scheme 1, which the cache migration recomputes.)
            options = {k: v for k, v in options.items() if v is not None}
        payload = json.dumps(
            {"kind": self.kind, "code": self.code_identity(), "options": options,
             "inputs": self.inputs, "outputs": list(self.outputs)},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def connect(parent, child) -> None:
    for node in (parent, child):
        if not isinstance(node, Step):
            raise GraphError(f"cannot connect {node!r}: only steps (and lists of steps) go in a `>>` chain; did you forget to call the step factory?")
    if child.kind == "source":
        raise GraphError(f"step '{child.name}' is a source and cannot come after '{parent.name}'")
    if child not in parent.children:
        parent.children.append(child)
        child.parents.append(parent)


def normalize_inputs(inputs) -> dict[str, str]:
    if inputs is None:
        return {}
    if isinstance(inputs, dict):
        result = {str(k): (v or "any") for k, v in inputs.items()}
    else:
        result = {str(k): "any" for k in inputs}
    for column, type_name in result.items():
        if type_name.rstrip("?") not in TYPE_CHECKS:
            raise GraphError(f"input column '{column}': unknown type '{type_name}' (types: {', '.join(TYPE_CHECKS)},"
                             " each with ? to allow null)")
    return result
