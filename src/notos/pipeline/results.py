"""Read a run folder back."""

from __future__ import annotations

from pathlib import Path

from notos.data.locate import locate
from notos.errors import NotosError


def load_run(run_dir: str | Path):
    """A finished run's leaves as a `datasets.DatasetDict`, one entry per leaf step.

        from notos import load_run
        ds = load_run("runs/quickstart")      # DatasetDict({'ratings': Dataset(...)})
    """
    import datasets
    import pyarrow as pa

    from notos.data.tables import read_parquet

    root = Path(run_dir)
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
