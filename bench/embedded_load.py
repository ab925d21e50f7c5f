#!/usr/bin/env python3
"""Seconds from a fresh Python process to the embedded model ready to generate (imports
included), before issue 17 and now, alternating: now cold (empty weights cache: GGUF
conversion + writing the cache) and now warm (the second run: the cache read back).

    .venv/bin/python bench/embedded_load.py --repeats 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import time, sys
started = time.perf_counter()
if sys.argv[1] == "before":
    import importlib.util
    spec = importlib.util.spec_from_file_location("hf_local_before", sys.argv[2])
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    llm = module.TransformersLLM(threads=1)
else:
    from notos.llms.hf_local import TransformersLLM
    llm = TransformersLLM(threads=1)
llm.load()
print(time.perf_counter() - started)
"""


def timed(variant: str, cache_dir: str, before_file: str) -> float:
    env = {**os.environ, "NOTOS_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", CHILD, variant, before_file], env=env, check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--before-ref", default="dac4333")
    args = p.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="notos-load-bench-"))
    before_file = scratch / "hf_local_before.py"
    before_file.write_text(subprocess.run(["git", "show", f"{args.before_ref}:src/notos/llms/hf_local.py"], cwd=ROOT,
                                          check=True, capture_output=True, text=True).stdout)
    results: dict[str, list[float]] = {"before": [], "now_cold": [], "now_warm": []}
    for k in range(args.repeats):
        cache = str(scratch / f"cache-{k}")  # empty: the cold run fills it, the warm run reads it
        for variant, name in (("before", "before"), ("now", "now_cold"), ("now", "now_warm")):
            seconds = timed(variant, cache, str(before_file))
            results[name].append(seconds)
            print(json.dumps({"variant": name, "load_s": round(seconds, 2), "load_avg": round(os.getloadavg()[0], 1)}), flush=True)
    before = statistics.median(results["before"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:9s} median {median:6.2f} s  ({median / before:.2f}x before)  runs {[round(v, 2) for v in values]}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
