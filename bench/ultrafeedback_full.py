#!/usr/bin/env python3
"""The whole UltraFeedback job, shaped as the paper ran it, against the loopback fake server:
N prompts (64k), each answered by 4 of a pool of 17 generators (drawn per row), the 4 answers
rated on 4 aspects (one call per aspect rating all 4, as UltraFeedback did), then one critique
per answer => 12 requests a prompt, 768k at N = 64k. Resume on: every batch of every LLM step
is committed to the run folder as it completes.

    .venv/bin/python ../shared/bench/fake_openai_server.py --port 18931 --latency-ms 0 --tokens 64 &
    .venv/bin/python bench/ultrafeedback_full.py --base-url http://127.0.0.1:18931/v1 --n 64000 --out full.json
    # kill it at any point, then the same command with --run DIR resumes where it stopped
    .venv/bin/python bench/ultrafeedback_full.py ... --executor ray --workers 2   (2 worker processes)

Prints one JSON line: requests sent (the server's count), wall, requests/s, peak RSS of this
process (sampled every 50 ms; with --executor ray wrap it in ../shared/bench/measure.py for the
whole process tree), per-step rows and failures. The prompts are written to a JSONL file first
by a child process, so neither their list nor their writing is in the measured process.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from notos.pipeline import Pipeline, group_columns, load_data, run, sample_n
from notos.tasks import critique, text_generation, ultrafeedback_rating

WRITE_PROMPTS = """
import json, sys
with open(sys.argv[1], "w") as fh:
    for i in range(int(sys.argv[2])):
        fh.write(json.dumps({"id": f"p{i:07d}", "instruction": f"Synthetic instruction #{i}: explain topic {i % 97} "
                             f"in a few sentences, with an example about item {i % 1013}."}) + "\\n")
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=64000, help="prompts")
    p.add_argument("--base-url", default="http://127.0.0.1:18931/v1")
    p.add_argument("--pool", type=int, default=17, help="generators in the pool")
    p.add_argument("--per-prompt", type=int, default=4, help="generators drawn per prompt")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-concurrency", type=int, default=64, help="requests in flight per model")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=2, help="--executor ray: worker processes (shared actors)")
    p.add_argument("--run", default=None, help="run folder (kept: rerun the same command to resume)")
    p.add_argument("--out", default=None, help="write the result JSON here")
    return p.parse_args()


def pipeline(prompts: str, args) -> Pipeline:
    def llm(model: str) -> dict:
        return {"backend": "openai", "base_url": args.base_url, "model": model, "max_concurrency": args.max_concurrency}

    source = load_data(path=prompts, id_column="id", name="prompts")
    pool = [text_generation(name=f"gen_{i:02d}", llm=llm(f"m{i:02d}"), max_new_tokens=args.max_new_tokens)
            for i in range(1, args.pool + 1)]
    group = group_columns(["generation", "model_name"], ["generations", "generation_models"], name="combine")
    rate = ultrafeedback_rating(name="rate", llm=llm("judge"), aspects="all", mode="text",
                                max_new_tokens=args.max_new_tokens)
    critic = critique(name="critique", llm=llm("critic"), max_new_tokens=args.max_new_tokens)
    source >> sample_n(args.per_prompt, per="row", name="pick") >> pool
    pool >> group >> rate >> critic
    return Pipeline(source, name="ultrafeedback_full", batch_size=args.batch_size)


def served(base_url: str) -> int:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as response:
        return json.load(response).get("requests_total", 0)


class PeakRSS:
    """This process's resident memory, sampled in a thread (MB)."""

    def __init__(self):
        self.peak, self.samples, self._stop = 0.0, [], threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.05):
            with open("/proc/self/statm") as fh:
                rss = int(fh.read().split()[1]) * page / 2**20
            self.peak = max(self.peak, rss)
            self.samples.append(rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="notos-full-") as scratch:
        prompts = os.path.join(scratch, "prompts.jsonl")
        subprocess.run([sys.executable, "-c", WRITE_PROMPTS, prompts, str(args.n)], check=True)
        folder = args.run or os.path.join(scratch, "run")
        executor, ray_start = None, None
        if args.executor == "ray":  # Ray starts before the clock; its start-up is reported apart
            import ray

            from notos.pipeline.executors.ray import RayExecutor

            t = time.time()
            ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
            ray_start = round(time.time() - t, 1)
            executor = RayExecutor(workers=args.workers)
        before = served(args.base_url)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.time()
        with PeakRSS() as rss:
            result = run(pipeline(prompts, args), folder, progress=False, executor=executor)
        wall = time.time() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        requests = served(args.base_url) - before
    # The second half of the run: steady state, after start-up and the first batches.
    half = rss.samples[len(rss.samples) // 2 :] or [0]
    figures = {
        "n": args.n, "executor": args.executor, "ray_start_s": ray_start, "workers": args.workers, "batch_size": args.batch_size,
        "requests": requests, "wall_s": round(wall, 1), "requests_per_s": round(requests / wall, 1) if wall else None,
        "cpu_s": round(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime, 1),
        "peak_rss_mb": round(rss.peak, 1), "rss_second_half_mb": [round(min(half), 1), round(max(half), 1)],
        "rows": result.rows, "failed": {k: v["rows_failed"] for k, v in result.stats.items() if v["rows_failed"]},
        "unparsed": {k: v["rows_unparsed"] for k, v in result.stats.items() if v.get("rows_unparsed")},
        "computed": {k: v["rows_in"] for k, v in result.stats.items() if k in ("prompts", "rate", "critique")},
    }
    print(json.dumps(figures))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(figures, fh)


if __name__ == "__main__":
    main()
