"""The local executor: one asyncio event loop drives every step of the graph.

Each step is one task. Batches reach a step through its inbox, a bounded queue, so memory stays
flat however many rows the source has; LLM calls of many batches and steps overlap on the one
loop. Every batch index reaches every step of its segment — with rows, or with none where the
plan skips it — so a fan-in step can wait for a batch from each parent and never waits for one
that will not come. What a step does with a batch is in batches.py, shared with SyncExecutor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from notos.pipeline.executors.batches import Batch, deliveries, global_part, global_parts, source_batch, step_batch
from notos.pipeline.executors.reading import read_source
from notos.pipeline.executors.state import RunResult, RunState
from notos.pipeline.graph import Pipeline
from notos.pipeline.step import Step

QUEUE_BATCHES = 4  # batches buffered per parent in a step's inbox: the memory bound between steps


class LocalExecutor:
    def __init__(self, queue_batches: int = QUEUE_BATCHES, max_workers: int | None = None):
        self.queue_batches = queue_batches
        self.max_workers = max_workers  # size of the thread / process pools, if steps ask for them

    def run(self, pipeline: Pipeline, out_dir, *, limit: int | None = None, config_yaml: str = "", progress: bool = True,
            retry_failed: bool = False, retry_unparsed: bool = False) -> RunResult:
        state = RunState(pipeline, out_dir, limit=limit, config_yaml=config_yaml, retry_failed=retry_failed,
                         retry_unparsed=retry_unparsed, max_workers=self.max_workers)
        try:
            asyncio.run(_LoopRun(state, self.queue_batches).main(progress))
        except BaseException as exc:
            state.fail(exc)
            raise
        return state.complete()


class _LoopRun:
    """The tasks of one run: one per step, passing batches through the steps' inboxes."""

    def __init__(self, state: RunState, queue_batches: int):
        self.state = state
        self.queue_batches = queue_batches
        # step -> its inbox of (parent name, Batch) messages; (parent name, None) says that
        # parent has sent all its batches. Made in `main`, on the loop that uses them.
        self.inboxes: dict[str, asyncio.Queue] = {}

    async def main(self, show_progress: bool) -> None:
        steps = self.state.pipeline.steps
        self.inboxes = {s.name: asyncio.Queue(self.queue_batches * max(1, len(s.parents))) for s in steps}
        try:
            with self.state.progress(show_progress):
                async with asyncio.TaskGroup() as group:
                    for step in steps:
                        group.create_task(self.drive(step), name=step.name)
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        finally:
            await self.state.close()

    async def drive(self, step: Step) -> None:
        if step.kind == "source":
            await self.drive_source(step)
        elif step.kind == "global":
            await self.drive_global(step)
        else:
            await self.drive_map(step)
        for child in step.children:
            await self.inboxes[child.name].put((step.name, None))

    async def send(self, step: Step, batch: Batch) -> None:
        for child, delivered in deliveries(step, batch):
            await self.inboxes[child.name].put((step.name, delivered))

    async def inputs(self, step: Step) -> AsyncIterator[list[Batch]]:
        """Each batch index, once every parent has sent it: that batch from each parent, in
        parent order. Parents may send indices in any order (batches finish out of order)."""
        inbox = self.inboxes[step.name]
        waiting: dict[int, dict[str, Batch]] = {}
        open_parents = len(step.parents)
        while open_parents:
            sender, batch = await inbox.get()
            if batch is None:
                open_parents -= 1
                continue
            got = waiting.setdefault(batch.index, {})
            got[sender] = batch
            if len(got) == len(step.parents):
                del waiting[batch.index]
                yield [got[p.name] for p in step.parents]

    async def drive_source(self, step: Step) -> None:
        batches = read_source(step, self.state.pipeline.batch_size, self.state.limit)
        loop = asyncio.get_running_loop()
        index = 0
        # Reading and hashing cost CPU and disk: keep them off the event loop.
        while (item := await loop.run_in_executor(None, next, batches, None)) is not None:
            rows, sig = item
            await self.send(step, await source_batch(self.state, step, index, rows, sig))
            index += 1

    def in_flight(self, step: Step) -> int:
        """Batches of this step in flight at once (a cluster executor may allow more)."""
        return step.concurrency

    async def compute(self, step: Step, inputs: list[Batch]) -> Batch:
        """One batch of a map step, here (a cluster executor sends it to its workers)."""
        return await step_batch(self.state, step, inputs)

    async def drive_map(self, step: Step) -> None:
        gate = asyncio.Semaphore(self.in_flight(step))

        async def one(inputs: list[Batch]) -> None:
            try:
                await self.send(step, await self.compute(step, inputs))
            finally:
                gate.release()

        # A batch that fails for good cancels the group: the step takes no more batches.
        async with asyncio.TaskGroup() as group:
            async for inputs in self.inputs(step):
                await gate.acquire()
                group.create_task(one(inputs))

    async def drive_global(self, step: Step) -> None:
        inputs = [batches[0] async for batches in self.inputs(step)]  # a global step has one parent
        parts, computed = await global_parts(self.state, step, inputs)
        for index, sig in parts:
            await self.send(step, await global_part(self.state, step, index, sig, computed))


def _first_error(error: BaseException) -> BaseException:
    """The first real exception inside a (nested) exception group."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
