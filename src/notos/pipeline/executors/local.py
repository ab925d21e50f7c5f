"""The local executor: one asyncio event loop drives every step of the graph.

Batches flow between steps through bounded queues, so memory stays flat however many rows
the source has. Every batch index reaches every step of its segment — as rows, or as a
"skip" token when the resume plan says the step is not needed — so fan-in steps can join
parents by batch index without waiting on something that will never come.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from notos import __version__
from notos.data.row_ids import assign_row_ids
from notos.errors import NotosError
from notos.pipeline.compute import compute_batch, merge_parents
from notos.pipeline.graph import Pipeline
from notos.pipeline.planner import COMPUTE, LOAD, RETRY, SKIP, Planner
from notos.pipeline.progress import StepProgress, StepStats
from notos.pipeline.step import Step
from notos.pipeline.store import RunStore, batch_signature, now

END = object()
QUEUE_BATCHES = 4  # batches buffered on each edge: the memory bound between two steps


@dataclass
class RunResult:
    out_dir: Path
    stats: dict[str, dict]
    rows: dict[str, int]  # leaf -> rows in data/LEAF
    seconds: float


def source_batches(step: Step, batch_size: int, limit: int | None) -> Iterator[list[dict]]:
    """Re-chunk whatever the source yields (rows or lists of rows) into fixed-size batches,
    so batch boundaries depend only on batch_size and the data — the basis of resume."""
    pending: list[dict] = []
    produced = 0
    for item in step.fn(**step.options):
        rows = item if isinstance(item, list) else [item]
        for row in rows:
            if not isinstance(row, dict):
                raise NotosError(f"source '{step.name}' yielded {type(row).__name__}, expected dicts (rows)")
        if limit is not None:
            rows = rows[: max(0, limit - produced - len(pending))]
        pending.extend(rows)
        # Slice by offset and cut the list once per item: a source that yields one huge list
        # would otherwise cost quadratic time.
        start = 0
        while len(pending) - start >= batch_size:
            produced += batch_size
            yield pending[start : start + batch_size]
            start += batch_size
        pending = pending[start:]
        if limit is not None and produced + len(pending) >= limit:
            break
    if pending:
        yield pending


def with_row_ids(step: Step, batches: Iterator[list[dict]]) -> Iterator[list[dict]]:
    position, seen = 0, set()
    id_column = step.options.get("id_column")
    label = f"{step.options['path']} (source '{step.name}')" if step.options.get("path") else f"source '{step.name}'"
    for batch in batches:
        fresh = [dict(row) for row in batch]
        for row in fresh:
            row.pop("_error", None)
        if not id_column and all("row_id" in row for row in fresh):
            assign_row_ids(fresh, position, "row_id", label, seen)  # rows from an earlier notos run keep their ids
        else:
            assign_row_ids(fresh, position, id_column, label, seen)
        position += len(fresh)
        yield fresh


def data_identity(step: Step, batch_size: int, limit: int | None) -> str:
    h = hashlib.sha256()
    for batch in with_row_ids(step, source_batches(step, batch_size, limit)):
        h.update(batch_signature(batch).encode())
    return h.hexdigest()


def _by_input(rows: list[dict], input_ids: set[str]) -> dict[str, list[dict]]:
    """Output rows grouped by the input row they came from: the same id, or `id.N` for the
    children of a step that expands a row into several."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        rid = row["row_id"]
        if rid not in input_ids:
            base, dot, tail = rid.rpartition(".")
            if dot and tail.isdigit() and base in input_ids:
                rid = base
        grouped.setdefault(rid, []).append(row)
    return grouped


def _first_error(error: BaseException) -> BaseException:
    """The first real exception inside a (nested) exception group."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


class LocalExecutor:
    def __init__(self, queue_batches: int = QUEUE_BATCHES, max_workers: int | None = None):
        self.queue_batches = queue_batches
        self.max_workers = max_workers

    def run(self, pipeline: Pipeline, out_dir, *, limit: int | None = None, config_yaml: str = "", progress: bool = True,
            retry_failed: bool = False) -> RunResult:
        pipeline.validate()
        data_ids = None
        if any(s.kind == "global" for s in pipeline.steps):
            data_ids = {s.name: data_identity(s, pipeline.batch_size, limit) for s in pipeline.sources}
        fps = pipeline.fingerprints(data_ids)
        store = RunStore(out_dir)
        manifest = {
            "notos_version": __version__, "pipeline": pipeline.name, "batch_size": pipeline.batch_size, "limit": limit,
            "status": "running", "started_at": now(),
            "steps": {s.name: {"kind": s.kind, "fingerprint": fps[s.name], "parents": [p.name for p in s.parents],
                               "cache": str(store.step_dir(s.name, fps[s.name]).relative_to(store.root))} for s in pipeline.steps},
            "leaves": {leaf.name: f"data/{leaf.name}" for leaf in pipeline.leaves},
        }
        store.open(manifest, config_yaml)
        run = _GraphRun(pipeline, store, fps, limit, self.queue_batches, self.max_workers, retry_failed)
        started = time.perf_counter()
        try:
            asyncio.run(run.main(progress))
        except BaseException as exc:
            manifest.update(status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", error=str(exc)[:500], finished_at=now())
            store.write_stats(run.stats_record())
            store.write_manifest(manifest)
            raise
        rows = {leaf.name: store.materialize(leaf.name, fps[leaf.name], run.leaf_parts[leaf.name]) for leaf in pipeline.leaves}
        seconds = time.perf_counter() - started
        manifest.update(status="complete", finished_at=now(), seconds=round(seconds, 3), rows=rows)
        manifest["last_run"] = {"finished_at": manifest["finished_at"], "rows": rows, "limit": limit}
        store.write_stats(run.stats_record())
        store.write_manifest(manifest)
        return RunResult(out_dir=store.root, stats=run.stats_record(), rows=rows, seconds=seconds)


class _GraphRun:
    """State of one run: queues, stats, pools; one coroutine per step."""

    def __init__(self, pipeline, store, fps, limit, queue_batches, max_workers, retry_failed=False):
        self.pipeline, self.store, self.fps, self.limit = pipeline, store, fps, limit
        self.planner = Planner(pipeline, store, fps, retry_failed)
        self.queues = {(p.name, c.name): asyncio.Queue(queue_batches) for c in pipeline.steps for p in c.parents}
        self.stats = {s.name: StepStats() for s in pipeline.steps}
        self.leaf_parts: dict[str, list] = {leaf.name: [] for leaf in pipeline.leaves}
        self.pools: dict = {}
        self.max_workers = max_workers
        self.progress: StepProgress | None = None

    def stats_record(self) -> dict:
        return {name: s.record() for name, s in self.stats.items()}

    async def main(self, show_progress: bool) -> None:
        kinds = {s.workers for s in self.pipeline.steps}
        if "thread" in kinds:
            self.pools["thread"] = ThreadPoolExecutor(self.max_workers)
        if "process" in kinds:
            self.pools["process"] = ProcessPoolExecutor(self.max_workers)
        total = None
        if len(self.pipeline.sources) == 1 and self.pipeline.sources[0].count:
            total = self.pipeline.sources[0].count()
            if total is not None and self.limit is not None:
                total = min(total, self.limit)
        try:
            with StepProgress([s.name for s in self.pipeline.steps], total, enabled=show_progress) as self.progress:
                async with asyncio.TaskGroup() as group:
                    for step in self.pipeline.steps:
                        group.create_task(self.drive(step), name=step.name)
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        finally:
            for pool in self.pools.values():
                pool.shutdown(cancel_futures=True)
            for step in self.pipeline.steps:
                if step.teardown is not None:
                    await step.teardown()

    # -- messaging --------------------------------------------------------------------
    async def emit(self, step: Step, message) -> None:
        for child in step.children:
            await self.queues[(step.name, child.name)].put(message)

    async def inbox(self, step: Step):
        """Yield (index, sig, [rows per parent], actions) once every parent has sent the batch."""
        if len(step.parents) == 1:
            queue = self.queues[(step.parents[0].name, step.name)]
            while (message := await queue.get()) is not END:
                index, sig, rows, actions = message
                yield index, sig, [rows], actions
            return
        pending: dict[int, dict] = {}
        queues = [self.queues[(p.name, step.name)] for p in step.parents]
        getters = {asyncio.ensure_future(q.get()): i for i, q in enumerate(queues)}
        while getters:
            done, _ = await asyncio.wait(getters, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                i = getters.pop(future)
                message = future.result()
                if message is END:
                    continue
                index, sig, rows, actions = message
                slot = pending.setdefault(index, {"sig": sig, "actions": actions, "rows": {}})
                slot["rows"][i] = rows
                getters[asyncio.ensure_future(queues[i].get())] = i
                if len(slot["rows"]) == len(queues):
                    del pending[index]
                    yield index, slot["sig"], [slot["rows"][j] for j in range(len(queues))], slot["actions"]

    # -- steps ------------------------------------------------------------------------
    async def drive(self, step: Step) -> None:
        if step.kind == "source":
            await self.run_source(step)
        elif step.kind == "global":
            await self.run_global(step)
        else:
            await self.run_map(step)
        await self.emit(step, END)

    async def run_source(self, step: Step) -> None:
        batches = with_row_ids(step, source_batches(step, self.pipeline.batch_size, self.limit))
        loop = asyncio.get_running_loop()
        index = 0
        signed = ((batch, batch_signature(batch)) for batch in batches)
        while True:
            # Reading and hashing cost CPU and disk: keep them off the event loop.
            item = await loop.run_in_executor(None, next, signed, None)
            if item is None:
                break
            batch, sig = item
            actions = self.planner.actions(step, index, sig)
            await self.finish_batch(step, index, sig, batch if actions[step.name] != SKIP else None, actions, loaded=False)
            index += 1

    async def run_map(self, step: Step) -> None:
        gate = asyncio.Semaphore(step.concurrency)
        tasks, errors = set(), []

        def done(task):
            tasks.discard(task)
            gate.release()
            if not task.cancelled() and task.exception() is not None:
                errors.append(task.exception())

        async for index, sig, inputs, actions in self.inbox(step):
            await gate.acquire()
            if errors:  # stop taking batches as soon as one fails for good
                raise errors[0]
            task = asyncio.create_task(self.map_batch(step, index, sig, inputs, actions))
            tasks.add(task)
            task.add_done_callback(done)
        if tasks:
            await asyncio.gather(*tasks)
        if errors:
            raise errors[0]

    async def map_batch(self, step: Step, index: int, sig: str, inputs: list, actions: dict) -> None:
        action = actions[step.name]
        if action == SKIP:
            await self.finish_batch(step, index, sig, None, actions, loaded=False)
            return
        if action == LOAD:
            rows = self.store.load(step.name, self.fps[step.name], index, sig)
            await self.finish_batch(step, index, sig, rows, actions, loaded=True)
            return
        if any(rows is None for rows in inputs):
            raise NotosError(f"internal: step '{step.name}' must compute batch {index} but an input was skipped")
        rows = inputs[0] if len(inputs) == 1 else (step.join or merge_parents)(inputs)
        stats = self.stats[step.name]
        stats.rows_in += len(rows)
        if step.kind == "route":
            await self.route(step, index, sig, rows, actions)
            stats.rows_out += len(rows)
            stats.batches += 1
            self.progress.advance(step.name, len(rows), stats.rows_failed)
            return
        stats.begin()
        try:
            if action == RETRY:
                result = await self.retry_batch(step, index, sig, rows)
            else:
                result = await compute_batch(step, rows, self.pools)
        finally:
            stats.end()
        stats.rows_failed += result.failed
        stats.tokens += result.tokens
        await self.finish_batch(step, index, sig, result.rows, actions, loaded=False, counted_in=True)

    async def retry_batch(self, step: Step, index: int, sig: str, rows: list[dict]):
        """Keep the rows this step already got right in the committed batch; compute the rest
        (rows that failed here or upstream) and put every row back in input order."""
        old = await asyncio.get_running_loop().run_in_executor(None, self.store.load, step.name, self.fps[step.name], index, sig)
        input_ids = {r["row_id"] for r in rows}
        kept = _by_input([r for r in old if not r.get("_error")], input_ids)
        todo = [r for r in rows if r["row_id"] not in kept]
        self.stats[step.name].rows_in -= len(rows) - len(todo)
        self.stats[step.name].rows_cached += sum(len(v) for v in kept.values())
        result = await compute_batch(step, todo, self.pools)
        fresh = _by_input(result.rows, input_ids)
        result.rows = [out for r in rows for out in (kept.get(r["row_id"]) or fresh.get(r["row_id"], []))]
        return result

    async def route(self, step: Step, index: int, sig: str, rows: list[dict], actions: dict) -> None:
        chosen = set(step.fn(index, len(step.children), **step.options))
        for i, child in enumerate(step.children):
            await self.queues[(step.name, child.name)].put((index, sig, rows if i in chosen else [], actions))

    async def finish_batch(self, step, index, sig, rows, actions, *, loaded: bool, counted_in: bool = False) -> None:
        """Commit (if this step caches and computed it), count, and pass the batch on."""
        if rows is not None:
            stats = self.stats[step.name]
            if actions[step.name] in (COMPUTE, RETRY) and self.planner.caches(step):
                started = time.perf_counter()
                await asyncio.get_running_loop().run_in_executor(None, self.store.commit, step.name, self.fps[step.name], index, sig, rows)
                stats.commit_seconds += time.perf_counter() - started
            if loaded:
                stats.rows_cached += len(rows)
            elif not counted_in:
                stats.rows_in += len(rows)
            stats.rows_out += len(rows)
            stats.batches += 1
            self.progress.advance(step.name, len(rows), stats.rows_failed)
        if not step.children:
            self.leaf_parts[step.name].append((index, sig))
        await self.emit(step, (index, sig, rows, actions))

    async def run_global(self, step: Step) -> None:
        fp = self.fps[step.name]
        parts = self.store.global_parts(step.name, fp) if self.planner.global_complete(step) else None
        collected: list[tuple[int, list[dict]]] = []
        async for index, _sig, inputs, _actions in self.inbox(step):
            if parts is None:
                if inputs[0] is None:
                    raise NotosError(f"internal: global step '{step.name}' was not sent batch {index}")
                collected.append((index, inputs[0]))
        if parts is None:
            parts = await self.compute_global(step, fp, [row for _, rows in sorted(collected, key=lambda c: c[0]) for row in rows])
            loaded = False
        else:
            loaded = True
        for index, sig in parts:
            actions = self.planner.actions(step, index, sig)
            rows = self.store.load(step.name, fp, index, sig) if actions[step.name] != SKIP else None
            if rows is not None and not loaded:
                self.stats[step.name].rows_out += len(rows)
                self.progress.advance(step.name, len(rows), self.stats[step.name].rows_failed)
            elif rows is not None:
                self.stats[step.name].rows_cached += len(rows)
            if not step.children:
                self.leaf_parts[step.name].append((index, sig))
            await self.emit(step, (index, sig, rows, actions))

    async def compute_global(self, step: Step, fp: str, rows: list[dict]) -> list[tuple[int, str]]:
        stats = self.stats[step.name]
        stats.rows_in = len(rows)
        started = time.perf_counter()
        live = [r for r in rows if not r.get("_error")]
        failed = [r for r in rows if r.get("_error")]
        loop = asyncio.get_running_loop()
        try:
            if step.is_async:
                out = await step.fn(live, **step.options)
            else:
                out = await loop.run_in_executor(self.pools.get(step.workers), lambda: step.fn(live, **step.options))
        except NotosError:
            raise
        except Exception as exc:  # a global step sees everything: its failure stops the run
            raise NotosError(f"step '{step.name}' failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, list) or any(not isinstance(r, dict) or "row_id" not in r for r in out):
            raise NotosError(f"step '{step.name}' must return a list of rows that keep their 'row_id'")
        out = [{**r, "_error": r.get("_error")} for r in out] + failed
        stats.seconds += time.perf_counter() - started
        stats.batches += 1
        size = self.pipeline.batch_size
        parts = []
        for index, start in enumerate(range(0, len(out), size)):
            chunk = out[start : start + size]
            sig = batch_signature(chunk)
            await loop.run_in_executor(None, self.store.commit, step.name, fp, index, sig, chunk)
            parts.append((index, sig))
        self.store.mark_global_complete(step.name, fp, parts, failed=sum(1 for r in out if r.get("_error")))
        return parts
