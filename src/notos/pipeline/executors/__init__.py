"""Executors own scheduling: when and where each step handles each batch. Steps know nothing of them.

Everything else is shared, so that every executor gives the same rows, stats and run folder,
and a run started by one resumes with another:

    state.py    RunState: opens the run (checks, fingerprints, cache migration, manifest),
                holds the store, plan, stats and pools; then complete() or fail(), and close()
    reading.py  read_source: a source's batches with row ids and signatures
    batches.py  Batch, and what a step does with one: source_batch, step_batch (map and
                route), global_parts + global_part, deliveries (what each child gets);
                each ends in `finish`, which commits, counts and notes leaf parts
    migrate.py  the one-time cache move to the current fingerprint scheme

`LocalExecutor` (local.py) runs them on one asyncio event loop, batches streaming between steps;
`SyncExecutor` (sync.py) runs them one batch at a time in plain loops.
"""

from pathlib import Path
from typing import Protocol

from notos.pipeline.executors.batches import Batch
from notos.pipeline.executors.local import LocalExecutor
from notos.pipeline.executors.state import RunResult, RunState
from notos.pipeline.executors.sync import SyncExecutor
from notos.pipeline.graph import Pipeline


class Executor(Protocol):
    def run(self, pipeline: Pipeline, out_dir: str | Path, *, limit: int | None = None, config_yaml: str = "",
            progress: bool = True, retry_failed: bool = False, retry_unparsed: bool = False) -> RunResult:
        """Run (or resume) `pipeline` into the run folder `out_dir`.

        `limit`: read at most this many source rows. `config_yaml`: the resolved, redacted
        config, written to RUN/pipeline.yaml (and read by the cache migration). `progress`:
        show progress bars. `retry_failed`: rows that failed before go through their steps again.
        `retry_unparsed`: rows whose answer a step could not read (`Step.unparsed`) are asked again.

        What an implementation does (LocalExecutor and SyncExecutor do exactly this; a Ray
        executor would do the same with remote workers):

        1. `state = RunState(pipeline, out_dir, limit=..., config_yaml=..., retry_failed=..., retry_unparsed=...)`
           before anything else; it raises on a bad graph before any step runs.
        2. For each source, `for index, (rows, sig) in enumerate(read_source(step, batch_size,
           limit))`: `batch = await source_batch(state, step, index, rows, sig)`.
        3. For a map or route step, for each batch index, once every parent has delivered it:
           `batch = await step_batch(state, step, [the index's Batch from each parent, in
           step.parents order])`. Indices may go in any order, several at once (up to
           `step.concurrency` for one step), but each (step, index) exactly once.
        4. For a global step, once its parent has delivered every index:
           `parts, computed = await global_parts(state, step, those batches)`, then
           `batch = await global_part(state, step, index, sig, computed)` for each part.
        5. Deliver each batch a step returns with `deliveries(step, batch)`: (child, Batch)
           pairs. Every index reaches every child, with rows=None where the plan skips it.
        6. However the run ends, `await state.close()` on the loop the steps ran on; then
           `return state.complete()`, or `state.fail(error)` and re-raise.

        The store commits batches atomically and the planner skips committed ones, so a run
        killed at any moment resumes, with any executor, losing only batches in flight.
        """
        ...


EXECUTORS = ("local", "sync", "ray")


def executor_named(name: str, *, ray_address: str | None = None) -> Executor:
    """The executor a command line names: `local` (one event loop, the default), `sync` (one
    batch at a time, for debugging) or `ray` (batches as Ray tasks and actors; `notos[ray]`)."""
    from notos.errors import NotosError

    if name == "local":
        return LocalExecutor()
    if name == "sync":
        return SyncExecutor()
    if name != "ray":
        raise NotosError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    try:
        import ray  # noqa: F401 - checked here so a missing extra is one line, not a traceback
    except ImportError:
        raise NotosError("--executor ray needs Ray: pip install 'notos[ray]'") from None
    from notos.pipeline.executors.ray import RayExecutor

    return RayExecutor(address=ray_address)


__all__ = ["Batch", "EXECUTORS", "Executor", "LocalExecutor", "RunResult", "RunState", "SyncExecutor", "executor_named"]
