"""The shipped ultrafeedback recipe killed with SIGKILL at seeded random moments, then resumed:
the records equal those of an uninterrupted run, no row twice, and `notos show` calls a killed
run interrupted (not running)."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from fake_llm_server import FakeLLMServer
from notos.pipeline import load_run

N_ROWS = 120
SETTINGS = ["--set", "critique.enabled=false", "--no-progress"]


def recipe_args(prompts, url, out):
    return ["run", "ultrafeedback", "--input", str(prompts), "--llm-base-url", url, "--out", str(out), *SETTINGS]


def records(out):
    rows = load_run(out)["records"].to_list()
    return sorted(({k: v for k, v in r.items() if k != "_error"} for r in rows), key=lambda r: r["instruction"])


@pytest.mark.slow  # four runs of the recipe in a process of their own
def test_killed_at_random_moments_then_resumed_matches_an_uninterrupted_run(cli, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "instruction": f"Explain item {i} in one line."}) + "\n"
                               for i in range(N_ROWS)))
    with FakeLLMServer(latency=0.1) as server:
        started = time.perf_counter()
        reference = cli(*recipe_args(prompts, server.base_url, tmp_path / "ref"))
        assert reference.returncode == 0, reference.stderr
        seconds = time.perf_counter() - started
        out, kills, moments = tmp_path / "killed", 0, random.Random(13)
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-m", "notos.cli", *recipe_args(prompts, server.base_url, out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            # Once the run has begun (its manifest is written), at a seeded moment of it: in a step,
            # between commits, or in the final data swap.
            begun = time.time() + 60
            while proc.poll() is None and not (out / "manifest.json").exists() and time.time() < begun:
                time.sleep(0.01)
            time.sleep(moments.uniform(0.05, 1.0) * seconds)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            _, err = proc.communicate()
            assert proc.returncode in (0, -signal.SIGKILL), err[-2000:]
            if kills and (out / "manifest.json").exists():
                shown = cli("show", out)
                status = json.loads((out / "manifest.json").read_text())["status"]
                if status == "running":  # killed mid-run: show must not say it still runs
                    assert "interrupted" in shown.stdout, shown.stdout
        done = cli(*recipe_args(prompts, server.base_url, out))
        assert done.returncode == 0, done.stderr
    assert kills >= 1
    got, want = records(out), records(tmp_path / "ref")
    assert len(got) == N_ROWS and len({r["instruction"] for r in got}) == N_ROWS
    assert got == want
