"""Read a run folder back."""

from __future__ import annotations

import json
from pathlib import Path

from notos.errors import NotosError


def load_run(run_dir: str | Path):
    """A finished run's leaves as a `datasets.DatasetDict`, one entry per leaf step.

        from notos import load_run
        ds = load_run("runs/quickstart")      # DatasetDict({'ratings': Dataset(...)})
    """
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(run_dir)
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        raise NotosError(f"{root}: not a notos run folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    result = {}
    for leaf, rel in manifest.get("leaves", {}).items():
        folder = root / rel
        if not folder.is_dir():
            raise NotosError(f"{root}: leaf '{leaf}' has no data yet (status: {manifest.get('status')}); rerun the pipeline to finish it")
        files = sorted(folder.glob("part-*.parquet"), key=lambda f: int(f.stem.split("-")[1]))  # numeric: no width limit
        tables = [pq.read_table(f) for f in files]
        if tables:
            table = pa.concat_tables(tables, promote_options="permissive")
        else:
            table = pa.table({"row_id": pa.array([], pa.string())})
        result[leaf] = datasets.Dataset(table)
    return datasets.DatasetDict(result)
