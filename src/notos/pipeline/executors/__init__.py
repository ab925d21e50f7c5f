"""Executors own scheduling, batching, resume and stats; steps know nothing of them.

`Executor` is the interface: `run(pipeline, out_dir, ...) -> RunResult`. The local executor
drives the whole graph from one asyncio event loop; a Ray executor can implement the same
call with the same planner, store and `compute_batch`, touching no step.
"""

from typing import Protocol

from notos.pipeline.executors.local import LocalExecutor, RunResult


class Executor(Protocol):
    def run(self, pipeline, out_dir, *, limit=None, config_yaml="", progress=True) -> RunResult: ...


__all__ = ["Executor", "LocalExecutor", "RunResult"]
