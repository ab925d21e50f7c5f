"""The pipeline engine: steps, graph, resume planning, store and executors.

Building a pipeline from YAML with every step type notos has is `notos.recipes.load_pipeline`
(the engine's own loader, `yaml_io`, knows only the engine's step types unless handed a catalog)."""

from notos.pipeline.columns import drop_columns, filter_rows, group_columns, keep_columns, rename_columns
from notos.pipeline.decorators import global_step, source, step
from notos.pipeline.executors import Executor, LocalExecutor, RunResult, SyncExecutor
from notos.pipeline.graph import Pipeline
from notos.pipeline.results import load_run
from notos.pipeline.routing import sample_n
from notos.pipeline.sources import from_rows, load_data
from notos.pipeline.step import Step
from notos.pipeline.yaml_io import to_config, to_yaml


def run(pipeline: Pipeline, out_dir, *, limit: int | None = None, progress: bool = True, executor: Executor | None = None,
        retry_failed: bool = False, retry_unparsed: bool = False) -> RunResult:
    """Run (or resume) a pipeline into `out_dir`. A step stands for the graph it is part of.
    `retry_failed`: rows that failed in an earlier run go through their steps again.
    `retry_unparsed`: rows whose answer a step could not read (a judge's rating that does not
    parse) are asked again; rows read before are kept.
    `executor`: LocalExecutor() unless given (see notos.pipeline.executors.Executor)."""
    from notos.pipeline.store import redact

    if isinstance(pipeline, Step):
        pipeline = Pipeline(pipeline)
    import yaml

    config_yaml = yaml.safe_dump(redact(to_config(pipeline)), sort_keys=False, allow_unicode=True)
    return (executor or LocalExecutor()).run(pipeline, out_dir, limit=limit, config_yaml=config_yaml, progress=progress,
                                             retry_failed=retry_failed, retry_unparsed=retry_unparsed)


__all__ = [
    "Executor", "LocalExecutor", "Pipeline", "RunResult", "Step", "SyncExecutor", "drop_columns",
    "filter_rows", "from_rows", "global_step", "group_columns", "keep_columns", "load_data", "load_run",
    "rename_columns", "run", "sample_n", "source", "step", "to_config", "to_yaml",
]
