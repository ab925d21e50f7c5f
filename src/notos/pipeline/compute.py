"""Apply one step to one batch, isolating failures to the rows that caused them.

Shared by every executor. A failed row is kept, with `_error` set to "step: reason"; later
steps pass it through untouched, so it lands in the output with its reason and is counted.
A batch step may fail single rows by setting their `_error` to the reason (the step's name is
put in front). A step may report token usage by returning a `_tokens` integer in a row; it
is summed into the step's stats and removed from the row. Rows the step answered but could
not read (`Step.unparsed`) are counted too: a judge whose replies never parse is not silent.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass

from notos.errors import NotosError
from notos.pipeline.step import Step, accepts, type_name_of

MAX_REASON = 500


def failure_reason(step_name: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{step_name}: {type(exc).__name__}" + (f": {text}" if text else "")
    return reason[:MAX_REASON]


@dataclass
class BatchResult:
    rows: list[dict]
    failed: int = 0  # rows that failed in this step
    tokens: int = 0
    unparsed: int = 0  # rows with an answer the step could not read (`Step.unparsed`)


def _merge_row(step_name: str, row: dict, result) -> list[dict]:
    """Per-row result -> output rows: dict adds columns, list expands, None drops."""
    if result is None:
        return []
    if isinstance(result, dict):
        return [{**row, **result}]
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        return [{**row, **r, "row_id": f"{row['row_id']}.{i}"} for i, r in enumerate(result)]
    return [{**row, "_error": f"{step_name}: returned {type(result).__name__}, expected a dict, a list of dicts or None"}]


def apply_sync(step_fn, per_row: bool, step_name: str, rows: list[dict], options: dict) -> list[dict]:
    """Run a sync step over live rows (also the body of thread/process workers)."""
    fn = _resolve(step_fn)
    if per_row:
        out: list[dict] = []
        for row in rows:
            try:
                out.extend(_merge_row(step_name, row, fn(row, **options)))
            except Exception as exc:  # noqa: BLE001 - one row's failure must not void the batch
                out.append({**row, "_error": failure_reason(step_name, exc)})
        return out
    try:
        return _check_batch_output(step_name, fn(rows, **options))
    except NotosError:
        raise
    except Exception as exc:  # noqa: BLE001
        if len(rows) == 1:
            return [{**rows[0], "_error": failure_reason(step_name, exc)}]
        # Find the rows that fail by running them one at a time; the rest go on.
        return [r for row in rows for r in apply_sync(fn, False, step_name, [row], options)]


def _resolve(step_fn):
    """Process workers get a 'module:function' reference instead of a decorated function."""
    if isinstance(step_fn, str):
        module, _, name = step_fn.partition(":")
        target = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
        return getattr(target, "fn", target)
    return step_fn


def _check_batch_output(step_name: str, rows) -> list[dict]:
    if not isinstance(rows, list):
        raise NotosError(f"step '{step_name}' returned {type(rows).__name__}; a batch step must return a list of rows")
    for row in rows:
        if not isinstance(row, dict) or "row_id" not in row:
            raise NotosError(f"step '{step_name}' returned a row without 'row_id'; batch steps must keep each row's id")
    return rows


async def apply_async(step: Step, rows: list[dict]) -> list[dict]:
    if step.per_row:
        gate = asyncio.Semaphore(step.row_concurrency)

        async def one(row):
            async with gate:
                try:
                    return _merge_row(step.name, row, await step.fn(row, **step.options))
                except Exception as exc:  # noqa: BLE001
                    return [{**row, "_error": failure_reason(step.name, exc)}]

        results = await asyncio.gather(*(one(r) for r in rows))
        return [r for group in results for r in group]
    try:
        return _check_batch_output(step.name, await step.fn(rows, **step.options))
    except NotosError:
        raise
    except Exception as exc:  # noqa: BLE001
        if len(rows) == 1:
            return [{**rows[0], "_error": failure_reason(step.name, exc)}]
        results = await asyncio.gather(*(apply_async(step, [row]) for row in rows))
        return [r for group in results for r in group]


def input_problem(step: Step, row: dict) -> str | None:
    """Why a row cannot go into a step: a declared input column holding a value of another
    type (or null). Checked per row as it enters the step, so one bad row fails alone, with
    its reason, before any work (an LLM request) is spent on it."""
    for column, wanted in step.inputs.items():
        if wanted == "any" or column not in row:
            continue
        if not accepts(wanted, row[column]):
            return f"{step.name}: column '{column}' is {type_name_of(row[column])}, expected {wanted}"
    return None


def check_inputs(step: Step, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Split live rows into those the step can take and those failed by `input_problem`."""
    if not any(t != "any" for t in step.inputs.values()):
        return rows, []
    ok, bad = [], []
    for row in rows:
        reason = input_problem(step, row)
        if reason:
            bad.append({**row, "_error": reason})
        else:
            ok.append(row)
    return ok, bad


async def compute_batch(step: Step, rows: list[dict], pools: dict) -> BatchResult:
    """Run a map step on a batch: failed rows pass through, live rows whose declared inputs
    have the right types go to the function, the others fail here with the reason."""
    live, refused = check_inputs(step, [r for r in rows if not r.get("_error")])
    passed = [r for r in rows if r.get("_error")]
    if not live:
        out = []
    elif step.is_async:
        out = await apply_async(step, live)
    elif step.workers == "inline":
        out = apply_sync(step.fn, step.per_row, step.name, live, step.options)
    else:
        loop = asyncio.get_running_loop()
        fn = step.ref if (step.workers == "process" and step.ref) else step.fn
        out = await loop.run_in_executor(pools[step.workers], apply_sync, fn, step.per_row, step.name, live, step.options)
    tokens = failed = unparsed = 0
    for row in out:
        used = row.pop("_tokens", None)
        if isinstance(used, int):
            tokens += used
        if row.get("_error"):
            failed += 1
            if not str(row["_error"]).startswith(f"{step.name}: "):
                row["_error"] = f"{step.name}: {row['_error']}"[:MAX_REASON]
        else:
            row.setdefault("_error", None)
            unparsed += bool(step.unparsed and step.unparsed(row))
    rows = out + refused + passed
    for row in rows:
        row.pop("_reask", None)  # the planner's note to the step, never stored
    return BatchResult(rows=rows, failed=failed + len(refused), tokens=tokens, unparsed=unparsed)


def merge_parents(parent_batches: list[list[dict] | None]) -> list[dict]:
    """Default fan-in: join the parents' rows of one batch by row_id, union of columns."""
    merged: dict[str, dict] = {}
    for rows in parent_batches:
        for row in rows or ():
            rid = row["row_id"]
            if rid not in merged:
                merged[rid] = dict(row)
                continue
            target = merged[rid]
            errors = [e for e in (target.get("_error"), row.get("_error")) if e]
            target.update({k: v for k, v in row.items() if k != "_error"})
            target["_error"] = "; ".join(dict.fromkeys(errors)) or None
    return list(merged.values())
