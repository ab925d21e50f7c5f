"""notos keeps pyarrow from importing pandas (50 MB) just to convert lists, without breaking pandas use."""

import os
import subprocess
import sys

SCRIPT = r"""
import sys
from notos.pipeline import from_rows, run, load_run
from notos.pipeline.decorators import step

@step(inputs=["x"], outputs=["y"])
def double(row):
    return {"y": row["x"] * 2}

run(from_rows(rows=[{"x": i} for i in range(50)]) >> double(), sys.argv[1], progress=False)
print("pandas after run:", "pandas" in sys.modules)
frame = load_run(sys.argv[1])["double"].to_pandas()
print("sum:", int(frame["y"].sum()))
"""


def test_a_run_does_not_import_pandas_and_pandas_still_works(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pandas after run: False" in done.stdout
    assert "sum: 2450" in done.stdout


IMPORT_ONLY = r"""
import sys
import pyarrow as pa
before = pa.default_memory_pool().backend_name
import notos.pipeline
print("pool kept on import:", pa.default_memory_pool().backend_name == before)
print("hook left:", any(type(h).__name__ == "_HidePandas" for h in sys.meta_path))
from notos.pipeline import from_rows, run
run(from_rows(rows=[{"x": 1}]), sys.argv[1], progress=False)
print("pool during runs:", pa.default_memory_pool().backend_name)
"""


def test_importing_notos_changes_no_global_state_a_run_sets_arrow_up(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run([sys.executable, "-c", IMPORT_ONLY, str(tmp_path / "r")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "pool kept on import: True" in done.stdout and "hook left: False" in done.stdout
    assert "pool during runs: system" in done.stdout
