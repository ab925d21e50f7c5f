"""One run's shared state, and its life: open, then complete or fail. The same for every executor.

Opening a run checks the graph, computes the fingerprints, carries an old run folder's cache
over to the current fingerprint scheme (migrate.py), and has the store write the manifest;
from then on the steps share the store, the plan, the stats and the worker pools kept here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from notos.pipeline.executors.arrow_settings import configure_arrow
from notos.pipeline.executors.migrate import migrate_cache
from notos.pipeline.executors.reading import data_identity
from notos.pipeline.graph import FINGERPRINT_SCHEME, Pipeline
from notos.pipeline.planner import Planner
from notos.pipeline.progress import RunStats, StepProgress
from notos.pipeline.store import RunStore


@dataclass
class RunResult:
    out_dir: Path
    stats: dict[str, dict]
    rows: dict[str, int]  # leaf -> rows in data/LEAF
    seconds: float


class RunState:
    """What the steps of one run share: store, fingerprints, plan, stats, pools, leaf parts."""

    def __init__(self, pipeline: Pipeline, out_dir, *, limit: int | None = None, config_yaml: str = "",
                 retry_failed: bool = False, retry_unparsed: bool = False, max_workers: int | None = None):
        configure_arrow()
        self.columns = pipeline.validate()  # each step's columns: an empty leaf still has them
        data_ids = None
        if any(s.kind == "global" for s in pipeline.steps):
            data_ids = {s.name: data_identity(s, pipeline.batch_size, limit) for s in pipeline.sources}
        self.pipeline, self.limit = pipeline, limit
        self.fps = pipeline.fingerprints(data_ids)
        self.store = RunStore(out_dir)
        migrate_cache(self.store, pipeline, self.fps, config_yaml, data_ids)
        self.store.open({
            "pipeline": pipeline.name, "batch_size": pipeline.batch_size, "limit": limit,
            "fingerprint_scheme": FINGERPRINT_SCHEME,
            "steps": {s.name: {"kind": s.kind, "fingerprint": self.fps[s.name], "parents": [p.name for p in s.parents]}
                      for s in pipeline.steps},
            "leaves": [leaf.name for leaf in pipeline.leaves],
        }, config_yaml)
        self.planner = Planner(pipeline, self.store, self.fps, retry_failed, retry_unparsed)
        self.stats = RunStats([s.name for s in pipeline.steps])
        self.leaf_parts: dict[str, list[tuple[int, str]]] = {leaf.name: [] for leaf in pipeline.leaves}
        # Pools for steps whose sync work runs off the event loop (`workers: thread | process`).
        self.pools: dict[str, ThreadPoolExecutor | ProcessPoolExecutor] = {}
        kinds = {s.workers for s in pipeline.steps}
        if "thread" in kinds:
            self.pools["thread"] = ThreadPoolExecutor(max_workers)
        if "process" in kinds:
            self.pools["process"] = ProcessPoolExecutor(max_workers, initializer=_extend_path,
                                                        initargs=(_module_roots(pipeline),))
        self.started = time.perf_counter()

    @contextmanager
    def progress(self, enabled: bool) -> Iterator[None]:
        """Progress bars for the steps while the run goes (silent when not on a terminal)."""
        total = None
        sources = self.pipeline.sources
        if len(sources) == 1 and sources[0].count:
            total = sources[0].count()
            if total is not None and self.limit is not None:
                total = min(total, self.limit)
        with StepProgress([s.name for s in self.pipeline.steps], total, enabled=enabled) as bars:
            self.stats.bars = bars
            try:
                yield
            finally:
                self.stats.bars = None

    async def close(self) -> None:
        """However the run ends: stop the pools, let steps release what they hold (LLM sessions).
        Awaited on the event loop the steps ran on."""
        for pool in self.pools.values():
            pool.shutdown(cancel_futures=True)
        for step in self.pipeline.steps:
            if step.teardown is not None:
                await step.teardown()

    def complete(self) -> RunResult:
        """Every batch went through: swap in each leaf's data, and record the run as complete."""
        try:
            rows = {leaf.name: self.store.materialize(leaf.name, self.fps[leaf.name], self.leaf_parts[leaf.name],
                                                      columns=self.columns.get(leaf.name))
                    for leaf in self.pipeline.leaves}
        except BaseException as exc:  # the manifest must not stay "running"; the cache stays for a rerun
            self.fail(exc)
            raise
        seconds = time.perf_counter() - self.started
        self.store.complete(rows, seconds, self.stats.record())
        return RunResult(out_dir=self.store.root, stats=self.stats.record(), rows=rows, seconds=seconds)

    def fail(self, error: BaseException) -> None:
        self.store.fail(error, self.stats.record())


def _module_roots(pipeline: Pipeline) -> list[str]:
    """The folders Python steps' modules were imported from (a YAML file's `fn: my_steps:thing`
    is imported with its folder on sys.path only for the import): a worker process started by
    spawn or forkserver imports each step's module again and must find it there too."""
    roots = []
    for step in pipeline.steps:
        module = sys.modules.get(getattr(step.fn, "__module__", ""))
        file = getattr(module, "__file__", None)
        if step.workers == "process" and file:
            depth = step.fn.__module__.count(".") + (Path(file).name == "__init__.py")
            roots.append(str(Path(file).resolve().parents[depth]))
    return sorted(set(roots))


def _extend_path(roots: list[str]) -> None:
    sys.path.extend(r for r in roots if r not in sys.path)
