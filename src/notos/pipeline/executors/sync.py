"""The synchronous executor: every batch one at a time, in plain loops.

Step after step in topological order, each over all its batches, with the same run state and
batch code as LocalExecutor: the same plan, commits, stats and run folder, so a run started by
one resumes with the other. Nothing overlaps and each step's batches wait in memory for its
children: for tests, debugging, and as the smallest example of the Executor protocol.
"""

from __future__ import annotations

import asyncio

from notos.pipeline.executors.batches import Batch, deliveries, global_part, global_parts, source_batch, step_batch
from notos.pipeline.executors.reading import read_source
from notos.pipeline.executors.state import RunResult, RunState
from notos.pipeline.graph import Pipeline


class SyncExecutor:
    def __init__(self, max_workers: int | None = None):
        self.max_workers = max_workers

    def run(self, pipeline: Pipeline, out_dir, *, limit: int | None = None, config_yaml: str = "", progress: bool = True,
            retry_failed: bool = False, retry_unparsed: bool = False) -> RunResult:
        state = RunState(pipeline, out_dir, limit=limit, config_yaml=config_yaml, retry_failed=retry_failed,
                         retry_unparsed=retry_unparsed, max_workers=self.max_workers)
        try:
            # One event loop for the whole run, entered once per batch: async steps, and the
            # LLM sessions their teardown closes, stay on one loop.
            with asyncio.Runner() as loop:
                try:
                    with state.progress(progress):
                        _run_steps(state, loop)
                finally:
                    loop.run(state.close())
        except BaseException as exc:
            state.fail(exc)
            raise
        return state.complete()


def _run_steps(state: RunState, loop: asyncio.Runner) -> None:
    sent: dict[tuple[str, str], list[Batch]] = {}  # (parent, child) -> the batches sent, in index order
    for step in state.pipeline.steps:
        inputs = [sent.pop((parent.name, step.name), []) for parent in step.parents]
        if step.kind == "source":
            read = read_source(step, state.pipeline.batch_size, state.limit)
            outputs = [loop.run(source_batch(state, step, index, rows, sig)) for index, (rows, sig) in enumerate(read)]
        elif step.kind == "global":
            parts, computed = loop.run(global_parts(state, step, inputs[0]))
            outputs = [loop.run(global_part(state, step, index, sig, computed)) for index, sig in parts]
        else:  # map and route: every parent sent every index of the segment, in order
            outputs = [loop.run(step_batch(state, step, list(batches))) for batches in zip(*inputs, strict=True)]
        for batch in outputs:
            for child, delivered in deliveries(step, batch):
                sent.setdefault((step.name, child.name), []).append(delivered)
