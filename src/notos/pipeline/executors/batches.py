"""What happens to one batch at one step: the same code for every executor.

An executor decides when and where these run; they decide what a step does with a batch.
Each kind of step does its work — a source reads, a map step computes (or loads, or retries),
a route picks branches, a global step computes once over every row — and then hands its
batch to `finish`, the one place where a batch is committed, counted and noted for the leaves.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from notos.errors import NotosError
from notos.pipeline.compute import BatchResult, check_inputs, compute_batch, merge_parents
from notos.pipeline.planner import COMPUTE, LOAD, RETRY, SKIP
from notos.pipeline.step import Step
from notos.pipeline.store import batch_signature

if TYPE_CHECKING:
    from notos.pipeline.executors.state import RunState


@dataclass
class Batch:
    """One batch on its way from a step to its children."""

    index: int  # position in its segment, counted from the source or global step that cut it
    signature: str  # identity of its rows where the segment starts (store.batch_signature)
    rows: list[dict] | None  # None: the plan skips this batch here (nothing below needs it)
    actions: dict[str, str]  # the plan for every step of the segment on this batch (Planner.actions)


async def finish(state: RunState, step: Step, batch: Batch, *, cached: bool = False) -> Batch:
    """Where every batch of every step ends: committed if this step computed it and caches,
    counted (`cached`: loaded from an earlier run), and noted if the step is a leaf."""
    if batch.rows is not None:
        if batch.actions[step.name] in (COMPUTE, RETRY) and state.planner.caches(step):
            await commit(state, step, batch.index, batch.signature, batch.rows)
        state.stats.passed(step.name, len(batch.rows), cached)
    if not step.children:
        state.leaf_parts[step.name].append((batch.index, batch.signature))  # skipped ones too: they are committed
    return batch


async def commit(state: RunState, step: Step, index: int, sig: str, rows: list[dict]) -> None:
    started = time.perf_counter()
    failed_before = sum(1 for r in rows if r.get("_error"))
    # Writing Parquet and fsync-ing cost milliseconds: keep them off the event loop.
    await asyncio.get_running_loop().run_in_executor(None, state.store.commit, step.name, state.fps[step.name], index, sig, rows)
    state.stats.committed(step.name, time.perf_counter() - started)
    # A value that cannot be stored fails its row at commit (store.commit sets `_error`): count it.
    state.stats.computed(step.name, 0, failed=sum(1 for r in rows if r.get("_error")) - failed_before)


# -- sources ------------------------------------------------------------------------------
async def source_batch(state: RunState, step: Step, index: int, rows: list[dict], sig: str) -> Batch:
    """A batch read from a source (see reading.read_source), planned for its whole segment."""
    actions = state.planner.actions(step, index, sig)
    if actions[step.name] == SKIP:
        return await finish(state, step, Batch(index, sig, None, actions))
    state.stats.computed(step.name, len(rows))
    return await finish(state, step, Batch(index, sig, rows, actions))


# -- map and route steps ------------------------------------------------------------------
async def step_batch(state: RunState, step: Step, inputs: list[Batch]) -> Batch:
    """A map or route step on one batch index; `inputs` is that batch from each parent, in
    the order of `step.parents` (a fan-in step joins them by row id)."""
    index, sig, actions = inputs[0].index, inputs[0].signature, inputs[0].actions
    action = actions[step.name]
    if action == SKIP:
        return await finish(state, step, Batch(index, sig, None, actions))
    if action == LOAD:
        rows = state.store.load(step.name, state.fps[step.name], index, sig)
        return await finish(state, step, Batch(index, sig, rows, actions), cached=True)
    if any(batch.rows is None for batch in inputs):
        raise NotosError(f"internal: step '{step.name}' must compute batch {index} but an input was skipped")
    rows = inputs[0].rows if len(inputs) == 1 else (step.join or merge_parents)([batch.rows for batch in inputs])
    if step.kind == "route":  # a route computes nothing: its rows pass on, `deliveries` picks the branches
        state.stats.computed(step.name, len(rows))
        return await finish(state, step, Batch(index, sig, rows, actions))
    with state.stats.busy(step.name):
        if action == RETRY:
            result, computed = await retry_batch(state, step, index, sig, rows)
        else:
            result, computed = await compute_batch(step, rows, state.pools), len(rows)
    state.stats.computed(step.name, computed, result.failed, result.tokens, result.unparsed)
    return await finish(state, step, Batch(index, sig, result.rows, actions))


async def retry_batch(state: RunState, step: Step, index: int, sig: str, rows: list[dict]) -> tuple[BatchResult, int]:
    """`retry_failed` / `retry_unparsed`: keep the rows this step already got right (and could
    read) in the committed batch,
    compute the rest (rows that failed here or upstream) and put every row back in input
    order. Returns the result and how many input rows were computed."""
    loop = asyncio.get_running_loop()
    old = await loop.run_in_executor(None, state.store.load, step.name, state.fps[step.name], index, sig)
    input_ids = {r["row_id"] for r in rows}
    unread = state.planner.unread_ids(step, index, sig)
    kept = _by_input([r for r in old if not r.get("_error") and _input_id(r["row_id"], input_ids) not in unread],
                     input_ids)
    # Rows this step asks again because it could not read their answer carry `_reask`: it samples
    # anew instead of repeating the greedy answer (compute_batch drops the mark).
    own = state.planner.own_unread_ids(step, index, sig)
    todo = [{**r, "_reask": 1} if r["row_id"] in own else r for r in rows if r["row_id"] not in kept]
    state.stats.kept(step.name, sum(len(v) for v in kept.values()))
    result = await compute_batch(step, todo, state.pools)
    fresh = _by_input(result.rows, input_ids)
    result.rows = [out for r in rows for out in (kept.get(r["row_id"]) or fresh.get(r["row_id"], []))]
    return result, len(todo)


def _by_input(rows: list[dict], input_ids: set[str]) -> dict[str, list[dict]]:
    """Output rows grouped by the input row they came from: the same id, or `id.N` for the
    children of a step that expands a row into several."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(_input_id(row["row_id"], input_ids), []).append(row)
    return grouped


def _input_id(row_id: str, input_ids: set[str]) -> str:
    """The id of the input row an output row came from (`id.N` is the N-th child of `id`)."""
    if row_id not in input_ids:
        base, dot, tail = row_id.rpartition(".")
        if dot and tail.isdigit() and base in input_ids:
            return base
    return row_id


def deliveries(step: Step, batch: Batch) -> list[tuple[Step, Batch]]:
    """What each child of `step` gets: the batch itself; from a route, the rows it routes to that
    child (routing.route_rows: per row or per batch), possibly none ([], still computed and
    committed as empty, so every child sees every batch index)."""
    if step.kind != "route" or batch.rows is None:
        return [(child, batch) for child in step.children]
    routed = step.fn(batch.index, batch.rows, len(step.children), **step.options)
    return [(child, replace(batch, rows=rows)) for child, rows in zip(step.children, routed, strict=True)]


# -- global steps -------------------------------------------------------------------------
async def global_parts(state: RunState, step: Step, inputs: list[Batch]) -> tuple[list[tuple[int, str]], bool]:
    """Run a global step over every row of `inputs` (all its parent's batches), or find it
    complete from an earlier run. Returns its output parts (index, signature), which start a
    new segment, and whether they were computed now."""
    fp = state.fps[step.name]
    if state.planner.global_complete(step):
        return state.store.global_parts(step.name, fp), False
    for batch in inputs:
        if batch.rows is None:
            raise NotosError(f"internal: global step '{step.name}' was not sent batch {batch.index}")
    rows = [row for batch in sorted(inputs, key=lambda b: b.index) for row in batch.rows]
    live, refused = check_inputs(step, [r for r in rows if not r.get("_error")])  # a wrong-typed row fails alone
    failed = refused + [r for r in rows if r.get("_error")]
    loop = asyncio.get_running_loop()
    with state.stats.busy(step.name):
        try:
            if step.is_async:
                out = await step.fn(live, **step.options)
            else:
                out = await loop.run_in_executor(state.pools.get(step.workers), lambda: step.fn(live, **step.options))
        except NotosError:
            raise
        except Exception as exc:  # a global step sees everything: its failure stops the run
            raise NotosError(f"step '{step.name}' failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, list) or any(not isinstance(r, dict) or "row_id" not in r for r in out):
        raise NotosError(f"step '{step.name}' must return a list of rows that keep their 'row_id'")
    out = [{**r, "_error": r.get("_error")} for r in out] + failed  # failed rows pass through, at the end
    state.stats.computed(step.name, len(rows))
    # Every part is committed, whatever the plan, before the step is marked complete: a rerun
    # takes its parts from the store, and a kill before the mark computes it again.
    parts = []
    for index, start in enumerate(range(0, len(out), state.pipeline.batch_size)):
        chunk = out[start : start + state.pipeline.batch_size]
        sig = batch_signature(chunk)
        await commit(state, step, index, sig, chunk)
        parts.append((index, sig))
    state.store.mark_global_complete(step.name, fp, parts, failed=sum(1 for r in out if r.get("_error")))
    return parts, True


async def global_part(state: RunState, step: Step, index: int, sig: str, computed: bool) -> Batch:
    """One part of a global step's output, as the root of its segment: planned like a source
    batch, and read back from the store where the plan needs its rows."""
    actions = state.planner.actions(step, index, sig)
    if actions[step.name] == SKIP:
        return await finish(state, step, Batch(index, sig, None, actions))
    rows = state.store.load(step.name, state.fps[step.name], index, sig)
    # The part is in the store already (committed just now or by an earlier run): reading it
    # is all this step does with it now, so `finish` must not commit it again.
    actions = {**actions, step.name: LOAD}
    return await finish(state, step, Batch(index, sig, rows, actions), cached=not computed)
