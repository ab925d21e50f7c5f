"""Turn plain functions into step factories.

    @step(inputs=["instruction"], outputs=["n_words"])
    def count_words(row):
        return {"n_words": len(row["instruction"].split())}

    load_data(path="prompts.jsonl") >> count_words()

Calling the factory makes a node; its keyword arguments are the function's options, plus
the runner settings `name`, `concurrency`, `row_concurrency`, `workers` and `cache`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from notos.errors import GraphError
from notos.pipeline.step import Step, normalize_inputs

RUNNER_SETTINGS = ("concurrency", "row_concurrency", "workers", "cache", "resources")


def option_names(fn: Callable, skip_first: bool) -> tuple[set[str], set[str], bool]:
    """(all option names, required option names, accepts **kwargs) of a step function."""
    params = list(inspect.signature(fn).parameters.values())
    if skip_first and params:
        params = params[1:]
    names, required, var_kw = set(), set(), False
    for p in params:
        if p.kind == p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
            if p.default is p.empty:
                required.add(p.name)
    return names, required, var_kw


def check_options(step_name: str, fn: Callable, options: dict, skip_first: bool, strict: bool = False) -> None:
    """Unknown or missing options -> one line naming the step. `strict` ignores a `**settings`
    catch-all (built-in factories pass runner settings through it, never options)."""
    names, required, var_kw = option_names(fn, skip_first)
    names.discard("name")
    if strict or not var_kw:
        for key in options:
            if key not in names:
                known = ", ".join(sorted(names | set(RUNNER_SETTINGS))) or "none"
                raise GraphError(f"step '{step_name}': unknown option '{key}' (options: {known})")
    for key in sorted(required - set(options)):
        raise GraphError(f"step '{step_name}': missing required option '{key}'")


class StepFactory:
    """A decorated function: call it (with options) to get a fresh step node."""

    def __init__(self, fn, kind, inputs=None, outputs=(), per_row=True, **settings):
        self.fn, self.kind, self.per_row = fn, kind, per_row
        self.inputs, self.outputs, self.settings = inputs, outputs, settings
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.ref = f"{fn.__module__}:{fn.__qualname__}"

    def __call__(self, name: str | None = None, **options) -> Step:
        settings = dict(self.settings)
        for key in RUNNER_SETTINGS:
            if key in options:
                settings[key] = options.pop(key)
        step_name = name or self.fn.__name__
        check_options(step_name, self.fn, options, skip_first=self.kind != "source")
        inputs = self.inputs(options) if callable(self.inputs) else self.inputs
        outputs = self.outputs(options) if callable(self.outputs) else self.outputs
        return Step(
            name=step_name,
            kind=self.kind,
            fn=self.fn,
            inputs=normalize_inputs(inputs),
            outputs=tuple(outputs or ()),
            options=options,
            type_name="python",
            per_row=self.per_row,
            ref=self.ref,
            **settings,
        )

    def __rshift__(self, other):
        raise GraphError(f"'{self.__name__}' is a step factory: call it, e.g. {self.__name__}() >> ...")

    __rrshift__ = __rshift__


def step(inputs=None, outputs=(), *, batch: bool = False, **settings) -> Callable[[Callable], StepFactory]:
    """A map step: per row by default, per batch with `batch=True`."""
    return lambda fn: StepFactory(fn, "map", inputs, outputs, per_row=not batch, **settings)


def global_step(inputs=None, outputs=(), **settings) -> Callable[[Callable], StepFactory]:
    """A step that sees every row at once: `fn(rows, **options) -> rows`."""
    return lambda fn: StepFactory(fn, "global", inputs, outputs, per_row=False, **settings)


def source(outputs=(), **settings) -> Callable[[Callable], StepFactory]:
    """A step that yields rows (or lists of rows): `fn(**options) -> Iterable`."""
    return lambda fn: StepFactory(fn, "source", None, outputs, per_row=False, **settings)
