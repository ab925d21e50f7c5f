"""What every LLM step shares: checking its `llm` spec up front, and the Step it becomes
(several batches in flight, connection settings out of the fingerprint, sessions closed at
the end of a run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notos.errors import GraphError

if TYPE_CHECKING:
    from notos.pipeline.step import Step

LLM_STEP_CONCURRENCY = 4  # batches in flight: keeps a remote server busy across batch edges


def check_llm(step_name: str, llm) -> None:
    """A bad spec is a one-line error naming the step, before anything runs."""
    from notos.errors import NotosError
    from notos.llms.spec import check_spec

    try:
        check_spec(llm)
    except NotosError as exc:
        raise GraphError(f"step '{step_name}': {exc}") from None


def check_params(step_name: str, **values) -> None:
    rules = {"num_generations": (1, int), "max_new_tokens": (1, int), "temperature": (0, float), "top_p": (0, float)}
    for key, value in values.items():
        low, kind = rules[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low
        if kind is int:
            ok = ok and isinstance(value, int)
        if key == "top_p":
            ok = ok and 0 < value <= 1
        if not ok:
            raise GraphError(f"step '{step_name}': option '{key}' has a bad value {value!r}")


def llm_step(*, name: str, fn, inputs: dict, outputs, options: dict, type_name: str, settings: dict) -> Step:
    """A batch map step around an async `fn(rows, **options)` that talks to `options['llm']`."""
    from notos.llms.spec import fingerprint_view
    from notos.pipeline.step import Step

    settings.setdefault("concurrency", LLM_STEP_CONCURRENCY)
    return Step(
        name=name, kind="map", fn=fn, per_row=False, inputs=inputs, outputs=tuple(outputs), options=options,
        type_name=type_name, teardown=close_llms,
        hash_options=lambda opts: {**opts, "llm": fingerprint_view(opts["llm"])}, **settings,
    )


async def close_llms() -> None:
    from notos.llms.spec import close_all

    await close_all()
