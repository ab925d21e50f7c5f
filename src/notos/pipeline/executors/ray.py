"""The Ray executor: the same pipeline, plan and run folder, with the work on a Ray cluster.

    run(pipeline, "s3://bucket/runs/uf", executor=RayExecutor(address="auto"))
    notos run ultrafeedback --executor ray --ray-address auto --out s3://bucket/runs/uf

The driver does what LocalExecutor does — one event loop, the same planner, fingerprints,
queues and stats (it *is* LocalExecutor's loop, with one change): a map step's batch that must
be computed goes to Ray actors instead of running in the driver. Everything cheap stays on the
driver: reading sources, routing, loading committed batches, skipping, the engine's column
steps, and global steps (they need every row in one place anyway).

Actors are long-lived worker processes: a model or an HTTP session is loaded once per actor,
not once per batch. By default `workers` shared actors (one per CPU of the cluster) run every
step; a step placed on its own (`resources`) gets `replicas` actors of its own — a GPU model.
Actor methods are async, so one actor runs many batches, of several LLM steps, on one event
loop. Each actor commits the batches it computes to the run folder itself (a local path every
node sees, or `s3://...`), atomically, before answering: a killed driver or node loses only
batches in flight, and a rerun skips everything committed. A dead actor is restarted and its
batches retried by Ray (`max_restarts`, `max_task_retries`); a batch committed twice is the
same rows under the same name, so a retry never duplicates. Back-pressure: at most `in_flight`
batches per step are out at once (default: the step's `concurrency` plus one, times its pool's
actors: each actor has its next batch waiting when one is done, so a CPU-bound step never idles
for a round trip), and the driver's queues hold at most `queue_batches` per edge. A leaf's rows
stay with the worker that committed them: only their count comes back.

Placement (the step's `resources` setting, e.g. YAML `resources: {num_gpus: 1, replicas: 2}`,
or the executor's `resources={"gen_a": {...}}`, which wins): `num_cpus`, `num_gpus`, `memory`,
`replicas`, `in_flight`, and custom Ray resources under `resources`. Actors ask for 0 CPUs
unless told (an HTTP step mostly waits), so a small cluster never deadlocks on placement.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path

from notos.errors import NotosError
from notos.pipeline.executors.batches import Batch, step_batch
from notos.pipeline.executors.local import QUEUE_BATCHES, _LoopRun
from notos.pipeline.executors.state import RunResult, RunState
from notos.pipeline.graph import Pipeline
from notos.pipeline.planner import COMPUTE, RETRY
from notos.pipeline.progress import RunStats
from notos.pipeline.step import Step
from notos.pipeline.store import RunStore
from notos.pipeline.yaml_io import ENGINE_STEPS

PLACEMENT = ("num_cpus", "num_gpus", "memory", "resources")
SETTINGS = (*PLACEMENT, "replicas", "in_flight")
# What a worker reports about one batch, added to the driver's stats.
COUNTED = ("rows_in", "rows_failed", "tokens", "rows_unparsed", "rows_cached", "commit_seconds")


def import_ray():
    try:
        import ray
    except ImportError:
        raise NotosError("--executor ray needs Ray: pip install 'notos[ray]'") from None
    return ray


class RayExecutor:
    def __init__(self, address: str | None = None, *, workers: int | None = None,
                 resources: dict[str, dict] | None = None, num_cpus: int | None = None,
                 queue_batches: int = QUEUE_BATCHES, max_restarts: int = 3, max_task_retries: int = 3, **options):
        """`address`: None starts a Ray instance on this machine for the run (or uses the one
        this process already joined); "auto" or "ray://host:10001" joins a cluster. `workers`:
        the shared worker processes that run every step not placed on its own (default: one
        per CPU of the cluster). `resources`: step -> its own actors' placement. `num_cpus`: the
        size of a local instance. `options` go to `ray.init` as they are."""
        self.address, self.workers, self.num_cpus = address, workers, num_cpus
        self.queue_batches = queue_batches
        self.resources = resources or {}
        self.retries = {"max_restarts": max_restarts, "max_task_retries": max_task_retries}
        self.options = options
        self.pools: dict[str, WorkerPool] = {}  # the last run's pools, by step (tests look at their PIDs)

    def run(self, pipeline: Pipeline, out_dir, *, limit: int | None = None, config_yaml: str = "", progress: bool = True,
            retry_failed: bool = False, retry_unparsed: bool = False) -> RunResult:
        ray = import_ray()
        for name in self.resources:
            if name not in pipeline.by_name:
                raise NotosError(f"RayExecutor(resources=...): no step named '{name}' in the pipeline")
        settings = {step.name: self._settings(step) for step in pipeline.steps}
        state = RunState(pipeline, out_dir, limit=limit, config_yaml=config_yaml, retry_failed=retry_failed,
                         retry_unparsed=retry_unparsed)
        started_here = False
        self.pools = {}
        try:
            started_here = self._connect(ray, pipeline)
            self.pools = self._pools(ray, state, settings)
            asyncio.run(_RayLoopRun(state, self.queue_batches, self.pools).main(progress))
        except BaseException as exc:
            state.fail(exc)
            raise
        finally:
            for pool in set(self.pools.values()):
                pool.close()
            if started_here:
                ray.shutdown()
        return state.complete()

    def busy_seconds(self) -> dict[str, list[float]]:
        """The last run's compute seconds of each actor, by step, as the actors timed their
        batches (their sum over the run's wall time: how many workers were computing at once)."""
        return {name: list(pool.busy_seconds.get(name, [])) for name, pool in self.pools.items()}

    def worker_pids(self) -> dict[str, list[int]]:
        """The process id of each live actor that runs a step, by step (for tests and drills)."""
        ray = import_ray()
        return {name: ray.get([a.pid.remote() for a in pool.actors]) for name, pool in list(self.pools.items())}

    def _connect(self, ray, pipeline: Pipeline) -> bool:
        """Join (or start) Ray; True if this run started it and must shut it down."""
        if ray.is_initialized():
            return False
        # The steps' own modules, and what this program added to its path (a test folder):
        # not the interpreter's and the environment's folders, which workers have anyway.
        own = [p for p in sys.path if p and not p.startswith((sys.prefix, sys.base_prefix))]
        env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(_module_roots(pipeline) + own))}
        options = {"include_dashboard": False, "logging_level": "ERROR", "runtime_env": {"env_vars": env},
                   **self.options}
        if self.address is None:
            ray.init(num_cpus=self.num_cpus, **options)
        else:
            ray.init(address=self.address, **options)
        return True

    def _settings(self, step: Step) -> dict | None:
        """A step's own placement (its `resources`, then the executor's for it), or None: the
        shared workers run it. The engine's column steps, unplaced, stay on the driver (""):
        they cost less than the trip."""
        settings = {**(getattr(step, "resources", None) or {}), **self.resources.get(step.name, {})}
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise NotosError(f"step '{step.name}': unknown resources setting '{unknown[0]}' (known: {', '.join(SETTINGS)})")
        if step.kind != "map" or (not settings and step.type_name in ENGINE_STEPS):
            return ""
        return settings or None

    def _pools(self, ray, state: RunState, settings: dict) -> dict:
        """Step -> the pool of actors that computes its batches: its own, or the shared one."""
        shared_steps = [state.pipeline.by_name[name] for name, placed in settings.items() if placed is None]
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        pools = {}
        if shared_steps:
            shared = WorkerPool(ray, shared_steps, state, {"replicas": workers}, self.retries)
            pools.update(dict.fromkeys((s.name for s in shared_steps), shared))
        for name, placed in settings.items():
            if placed:
                pools[name] = WorkerPool(ray, [state.pipeline.by_name[name]], state, placed, self.retries)
        return pools


class _RayLoopRun(_LoopRun):
    """LocalExecutor's loop, where a map step's batches to compute go to the step's actors."""

    def __init__(self, state: RunState, queue_batches: int, pools: dict):
        super().__init__(state, queue_batches)
        self.pools = pools

    def in_flight(self, step: Step) -> int:
        pool = self.pools.get(step.name)
        return pool.in_flight(step) if pool else step.concurrency

    async def compute(self, step: Step, inputs: list[Batch]) -> Batch:
        pool = self.pools.get(step.name)
        first = inputs[0]
        if pool is None or first.actions[step.name] not in (COMPUTE, RETRY):
            return await step_batch(self.state, step, inputs)  # skip, load, route, columns: on the driver
        stats = self.state.stats
        unread = None
        if first.actions[step.name] == RETRY:  # what the worker keeps of the committed batch: the planner says
            planner, index, sig = self.state.planner, first.index, first.signature
            unread = (planner.unread_ids(step, index, sig), planner.own_unread_ids(step, index, sig))
        with stats.busy(step.name):
            rows, counts = await pool.run(step, inputs, unread)
        stats.computed(step.name, counts["rows_in"], counts["rows_failed"], counts["tokens"], counts["rows_unparsed"])
        stats.kept(step.name, counts["rows_cached"])
        stats.committed(step.name, counts["commit_seconds"])
        stats.passed(step.name, counts["rows_out"])
        if not step.children:  # its rows were committed by the worker, and go nowhere from here
            self.state.leaf_parts[step.name].append((first.index, first.signature))
        return Batch(first.index, first.signature, rows if rows is not None else [], first.actions)


class WorkerPool:
    """Actors that run some steps' batches — the shared workers, or one placed step's own —
    started at the first batch to compute (a resume that computes nothing starts none). Each
    batch goes to the least busy actor."""

    def __init__(self, ray, steps: list[Step], state: RunState, settings: dict, retries: dict):
        self.ray, self.steps, self.state, self.retries = ray, steps, state, retries
        self.replicas = int(settings.get("replicas", 1))
        self.fixed_in_flight = settings.get("in_flight")
        self.placement = {"num_cpus": 0, **{k: settings[k] for k in PLACEMENT if k in settings}}
        self.actors: list = []
        self.busy: list[int] = []  # batches out at each actor now
        self.busy_seconds: dict[str, list[float]] = {}  # step -> each actor's compute time, as it measured it

    def in_flight(self, step: Step) -> int:
        """Batches of `step` out at once: back-pressure, and enough to keep every actor busy —
        its `concurrency` computing, and one more waiting at the actor for the moment one ends."""
        return int(self.fixed_in_flight or (step.concurrency + 1) * self.replicas)

    def start(self) -> None:
        limit = max(1000, sum(self.in_flight(step) for step in self.steps))
        actor = self.ray.remote(StepWorker).options(max_concurrency=limit, **self.retries, **self.placement)
        planner, store = self.state.planner, self.state.store
        specs = []
        for step in self.steps:
            plan = (planner.caches(step), planner.retry_failed, getattr(planner, "retry_unparsed", False))
            fp = self.state.fps[step.name]
            # What the driver listed, so that no worker lists the step's folder again (on S3,
            # one LIST per 1,000 parts, per worker).
            failures = store.failures(step.name, fp) if plan[0] else set()
            # The step alone (no graph): the driver decides what it commits; sources stay home.
            # A leaf's rows go back to no one: the worker answers with their count.
            specs.append((replace(step, parents=[], children=[]), fp, plan, failures, bool(step.children)))
        self.actors = [actor.remote(specs, str(store.root)) for _ in range(self.replicas)]
        self.busy = [0] * self.replicas
        self.busy_seconds = {step.name: [0.0] * self.replicas for step in self.steps}

    async def run(self, step: Step, inputs: list[Batch], unread: tuple[set, set] | None = None
                  ) -> tuple[list[dict] | None, dict]:
        """A batch computed (and committed) by the least busy actor: its rows (None for a leaf)
        and its counts (COUNTED, `rows_out`, and the worker's own `seconds` on it). `unread`:
        for a batch to retry, the planner's unread_ids and own_unread_ids of it."""
        if not self.actors:
            self.start()
        i = min(range(len(self.actors)), key=self.busy.__getitem__)
        self.busy[i] += 1
        try:
            rows, counts = await self.actors[i].run.remote(step.name, inputs, unread)
            self.busy_seconds[step.name][i] += counts["seconds"]
            return rows, counts
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
            raise (cause or NotosError(f"step '{step.name}': {str(exc).strip().splitlines()[-1]}")) from None
        except self.ray.exceptions.RayActorError:
            raise NotosError(f"step '{step.name}': its Ray worker died on batch {inputs[0].index} and the "
                             "retries ran out (max_restarts / max_task_retries)") from None
        finally:
            self.busy[i] -= 1

    def close(self) -> None:
        if not self.actors:
            return
        try:
            self.ray.get([a.close.remote() for a in self.actors], timeout=30)
        except Exception:  # noqa: BLE001, S110 - a dead actor has nothing left to close
            pass
        for actor in self.actors:
            self.ray.kill(actor)


class StepWorker:
    """A Ray actor, in a worker process of its own, running batches of the steps it was given
    with the same `step_batch` as every executor, and committing them to the run folder itself.
    Its methods are async: many batches, of several steps, share its one event loop."""

    def __init__(self, specs: list[tuple[Step, str, tuple[bool, bool, bool], set, bool]], store_root: str):
        from notos.pipeline.executors.arrow_settings import configure_arrow

        configure_arrow()
        self.store = RunStore(store_root)
        self.steps: dict[str, tuple[Step, dict, _WorkerPlan]] = {}
        self.rows_back: dict[str, bool] = {}  # step -> whether its rows go back to the driver
        for step, fp, plan, failures, rows_back in specs:
            self.store.assume_listed(step.name, fp, failures)
            self.steps[step.name] = (step, {step.name: fp}, _WorkerPlan(*plan))
            self.rows_back[step.name] = rows_back
        self.pools: dict = {}
        kinds = {step.workers for step, _fp, _plan in self.steps.values()}
        if "thread" in kinds:
            from concurrent.futures import ThreadPoolExecutor

            self.pools["thread"] = ThreadPoolExecutor()
        if "process" in kinds:
            from concurrent.futures import ProcessPoolExecutor

            self.pools["process"] = ProcessPoolExecutor()

    def pid(self) -> int:
        return os.getpid()

    async def run(self, name: str, inputs: list[Batch], unread: tuple[set, set] | None = None
                  ) -> tuple[list[dict] | None, dict]:
        step, fps, plan = self.steps[name]
        call = _Call(self.store, fps, plan.with_unread(*unread) if unread else plan, self.pools, name)
        batch = await step_batch(call, step, inputs)
        numbers = call.stats.steps[name]
        rows = batch.rows or []
        counts = {key: getattr(numbers, key) for key in COUNTED} | {"rows_out": len(rows), "seconds": numbers.seconds}
        return (rows if self.rows_back[name] else None), counts

    async def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(cancel_futures=True)
        for step, _fp, _plan in self.steps.values():
            if step.teardown is not None:
                await step.teardown()


class _Call:
    """What `step_batch` reads of a run's state, for one batch on a worker: the worker's store
    and plan, and stats of its own (several batches share the worker at once)."""

    def __init__(self, store: RunStore, fps: dict, planner, pools: dict, name: str):
        self.store, self.fps, self.planner, self.pools = store, fps, planner, pools
        self.stats = RunStats([name])
        self.leaf_parts: dict[str, list] = {name: []}


class _WorkerPlan:
    """The part of the plan a worker needs: whether the step commits, and for a batch to retry,
    which of its committed rows it may not keep (the driver's Planner worked them out: they
    depend on the steps before this one in the segment, which the worker does not know)."""

    def __init__(self, commits: bool, retry_failed: bool, retry_unparsed: bool,
                 unread: frozenset = frozenset(), own: frozenset = frozenset()):
        self.commits, self.retry_failed, self.retry_unparsed = commits, retry_failed, retry_unparsed
        self.unread, self.own = unread, own

    def with_unread(self, unread: set, own: set) -> _WorkerPlan:
        return _WorkerPlan(self.commits, self.retry_failed, self.retry_unparsed, frozenset(unread), frozenset(own))

    def caches(self, step: Step) -> bool:
        return self.commits

    def unread_ids(self, step: Step, index: int, sig: str) -> frozenset:
        return self.unread

    def own_unread_ids(self, step: Step, index: int, sig: str) -> frozenset:
        return self.own


def _module_roots(pipeline: Pipeline) -> list[str]:
    """Folders the steps' own modules were imported from (`fn: my_steps:thing`): Ray workers
    import them again to unpickle the steps."""
    roots = []
    for step in pipeline.steps:
        name = getattr(step.fn, "__module__", "") or ""
        file = getattr(sys.modules.get(name), "__file__", None)
        if file and not name.startswith("notos."):
            depth = name.count(".") + (Path(file).name == "__init__.py")
            roots.append(str(Path(file).resolve().parents[depth]))
    return sorted(set(roots))
