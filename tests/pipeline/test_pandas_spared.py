"""notos keeps pyarrow from importing pandas (50 MB) just to convert lists, without breaking pandas use."""

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
