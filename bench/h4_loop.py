"""How long `notos quickstart` (`make demo`) takes: the whole loop on a fresh folder, then the
rerun on the same folder (every stage done earlier), each in a fresh process as a user runs it.

    .venv/bin/python bench/h4_loop.py                         # the defaults, as `make demo` runs them
    .venv/bin/python bench/h4_loop.py -- --prompts 8 --steps 4   # anything after -- goes to the command

Prints wall and CPU seconds of each run, the seconds of each stage (from OUT/stages.json) and the
machine's load average at the start and end (a shared machine's figures move with its load). The
run folder is a temporary one, removed at the end; the model cache (~/.cache/notos) is kept, as
it is for a user after the first run.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.returncode


def main(extra: list[str]) -> None:
    out = Path(tempfile.mkdtemp(prefix="notos-loop-bench-")) / "qs"
    command = [sys.executable, "-m", "notos.cli", "quickstart", "--out", str(out), "--no-progress", *extra]
    print(f"command: notos quickstart --out OUT --no-progress {' '.join(extra)}")
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    try:
        wall, cpu, _ = timed(command)
        stages = json.loads((out / "stages.json").read_text())["stages"]
        print(f"fresh run: {wall:.1f} s wall, {cpu:.1f} s CPU")
        for name, record in sorted(stages.items(), key=lambda kv: kv[1]["order"]):
            print(f"  {name:<14} {record['seconds']:7.1f} s")
        wall, cpu, _ = timed(command)
        print(f"rerun (resume, nothing to do): {wall:.1f} s wall, {cpu:.1f} s CPU")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[args.index("--") + 1:] if "--" in args else args)
