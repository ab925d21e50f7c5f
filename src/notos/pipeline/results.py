"""Read a run folder back."""

from __future__ import annotations

from pathlib import Path

from notos.data.locate import locate
from notos.errors import NotosError


def load_run(run_dir: str | Path):
    """A finished run's leaves as a `datasets.DatasetDict`, one entry per leaf step.

        from notos import load_run
        ds = load_run("runs/quickstart")      # DatasetDict({'ratings': Dataset(...)})
        ds = load_run("s3://bucket/runs/uf")  # a run folder on an object store
    """
    import datasets
    import pyarrow as pa

    from notos.data.tables import read_parquet
    from notos.pipeline.storage import is_uri, local_path

    if is_uri(run_dir):
        return datasets.DatasetDict({leaf: datasets.Dataset(table) for leaf, table in _remote_leaves(run_dir).items()})
    root = local_path(run_dir)
    location = locate(root) if root.is_dir() else None
    if location is None or location.kind != "run":
        raise NotosError(f"{root}: not a notos run folder (no manifest.json)")
    result = {}
    for leaf, files in location.leaves.items():
        if files is None:
            raise NotosError(f"{root}: leaf '{leaf}' has no data yet (status: {location.manifest.get('status')}); "
                             "rerun the pipeline to finish it")
        table = read_parquet(list(files), str(root)) if files else pa.table({"row_id": pa.array([], pa.string())})
        result[leaf] = datasets.Dataset(table)
    return datasets.DatasetDict(result)


def _remote_leaves(uri: str) -> dict:
    """Each leaf's table of a run folder on an object store (by the list each publication wrote)."""
    import json

    from notos.pipeline.storage import ObjectFiles, read_leaf

    files = ObjectFiles(uri)
    manifest = files.read_bytes("manifest.json")
    if manifest is None:
        raise NotosError(f"{uri}: not a notos run folder (no manifest.json)")
    manifest = json.loads(manifest)
    tables = {}
    for leaf in manifest.get("leaves", {}):
        table = read_leaf(files, leaf)
        if table is None:
            raise NotosError(f"{uri}: leaf '{leaf}' has no data yet (status: {manifest.get('status')}); "
                             "rerun the pipeline to finish it")
        tables[leaf] = table
    return tables
