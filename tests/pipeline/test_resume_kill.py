"""Resume after `kill -9` at several points gives exactly the rows of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from notos.pipeline import load_run

STEPS_MODULE = '''
import time
from notos.pipeline import global_step, step

@step(inputs={"instruction": "str"}, outputs=["slow"], batch=True)
def slow(rows):
    time.sleep(0.04)  # stands in for an LLM call: slow enough to be killed mid-run
    return [{**r, "slow": r["instruction"].upper()} for r in rows]

@step(inputs=["slow"], outputs=["answer", "model"])
def answer(row, model="m"):
    if row["instruction"].endswith("7"):
        raise ValueError("sevens fail")
    return {"answer": model + ":" + row["slow"], "model": model}

@global_step(inputs=["answers"], outputs=["rank"])
def rank(rows):
    ordered = sorted(rows, key=lambda r: r["instruction"])
    return [{**r, "rank": i} for i, r in enumerate(ordered)]
'''

PIPELINE = """
name: resume
batch_size: 10
steps:
  - {name: prompts, type: load_data, path: prompts.jsonl}
  - {name: slow, type: python, fn: resume_steps:slow, after: prompts}
  - {name: route, type: sample_n, n: 2, seed: 3, after: slow}
  - {name: g1, type: python, fn: resume_steps:answer, model: m1, after: route}
  - {name: g2, type: python, fn: resume_steps:answer, model: m2, after: route}
  - {name: g3, type: python, fn: resume_steps:answer, model: m3, after: route}
  - {name: group, type: group_columns, columns: [answer, model], output_columns: [answers, models], after: [g1, g2, g3]}
  - {name: rank, type: python, fn: resume_steps:rank, after: group}
  - {name: ranked, type: keep_columns, columns: [instruction, answers, models, rank], after: rank}
  - {name: shouted, type: filter_rows, column: slow, op: contains, value: "1", after: slow}
"""


def make_project(folder: Path, n_rows: int = 400) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "resume_steps.py").write_text(STEPS_MODULE)
    (folder / "pipeline.yaml").write_text(PIPELINE)
    with open(folder / "prompts.jsonl", "w") as fh:
        for i in range(n_rows):
            fh.write(json.dumps({"instruction": f"prompt number {i}"}) + "\n")
    return folder / "pipeline.yaml"


def start(pipeline: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "notos.cli", "run", str(pipeline), "--out", str(out), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def committed(out: Path, step: str) -> int:
    return sum(1 for d in (out / "cache").glob(f"{step}-*") for f in d.glob("part-*"))


def kill_when(proc: subprocess.Popen, ready, timeout: float = 60) -> bool:
    """SIGKILL the run once `ready()` holds; False if it finished first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("run neither reached the kill point nor finished")


def rows_of(out: Path) -> dict:
    return {leaf: ds.to_list() for leaf, ds in load_run(out).items()}


def test_kill_9_at_several_points_then_resume_matches_uninterrupted(tmp_path):
    pipeline = make_project(tmp_path / "project")
    reference = tmp_path / "reference"
    done = start(pipeline, reference)
    assert done.wait(120) == 0, done.stderr.read()
    expected = rows_of(reference)
    assert len(expected["ranked"]) == 400 and len(expected["shouted"]) > 0
    failed = [r for r in expected["ranked"] if r["models"] == []]
    assert not failed  # a failed row keeps its data and carries _error instead
    assert sum(1 for r in load_run(reference)["ranked"].to_list() if r["_error"]) == 40

    out = tmp_path / "killed"
    kill_points = [
        lambda: (out / "manifest.json").exists(),  # right after start-up
        lambda: committed(out, "slow") >= 3,
        lambda: committed(out, "slow") >= 15,
        lambda: committed(out, "slow") >= 30,
        lambda: committed(out, "rank") >= 1,  # inside the global step's commit
    ]
    kills = 0
    for ready in kill_points:
        kills += kill_when(start(pipeline, out), ready)
    assert kills >= 3, "the run finished before most kill points: make the slow step slower"
    final = start(pipeline, out)
    assert final.wait(120) == 0, final.stderr.read()
    assert not list(out.rglob(".*.tmp-*"))
    got = rows_of(out)
    assert got == expected
    for leaf, rows in got.items():
        ids = [r["row_id"] for r in rows]
        assert len(ids) == len(set(ids)), f"duplicates in {leaf}"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["slow"]["rows_in"] < 400  # the resumed run did not redo committed batches


def test_rerun_of_a_complete_run_computes_nothing(tmp_path):
    pipeline = make_project(tmp_path / "project", n_rows=50)
    out = tmp_path / "run"
    for _ in range(2):
        proc = start(pipeline, out)
        assert proc.wait(60) == 0, proc.stderr.read()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["slow"]["rows_in"] == 0 and stats["rank"]["rows_in"] == 0
    assert len(load_run(out)["ranked"]) == 50
