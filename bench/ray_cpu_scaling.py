#!/usr/bin/env python3
"""A CPU-bound step on the Ray executor with 1 and 2 worker processes, beside the local executor:
MinHash signatures (64 seeded hashes over word 3-shingles, pure Python, ~1-2 ms a row) of N
UltraFeedback-like prompts — the core of near-duplicate removal over a 64k x 4 dataset.

    .venv/bin/python bench/ray_cpu_scaling.py --n 20000

One Ray instance (num_cpus=2) for all Ray runs, started before the clock. Prints per run: wall,
rows/s, rows/s per worker, the driver's own CPU seconds (its overhead: reading, routing, queues,
shipping batches), and the speed-up of 2 workers over 1. Resume is on (the leaf commits).
"""

import argparse
import hashlib
import json
import resource
import tempfile
import time

from notos.pipeline import Pipeline, from_rows, run, step

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
         "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"]


@step(inputs={"instruction": "str"}, outputs=["minhash"], batch=True)
def minhash(rows, num_hashes: int = 64):
    out = []
    for row in rows:
        words = row["instruction"].split()
        shingles = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
        signature = []
        for seed in range(num_hashes):
            salt = seed.to_bytes(2, "big")
            signature.append(min(int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8, salt=salt).digest()[:8], "big")
                                 for s in shingles))
        out.append({**row, "minhash": signature[:8]})  # the band keys a dedup would index
    return out


def prompts(n: int) -> list[dict]:
    return [{"id": f"p{i:07d}", "instruction": " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(40 + i % 20))}
            for i in range(n)]


def build(n: int, batch_size: int) -> Pipeline:
    src = from_rows(prompts(n), id_column="id")
    src >> minhash()
    return Pipeline(src, name="minhash", batch_size=batch_size)


def timed(label: str, n: int, batch_size: int, executor, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="notos-ray-cpu-") as folder:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = run(build(n, batch_size), folder, progress=False, executor=executor)
        wall = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    driver_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    figures = {"run": label, "workers": workers, "rows": result.rows["minhash"], "wall_s": round(wall, 2),
               "rows_per_s": round(n / wall, 1), "rows_per_s_per_worker": round(n / wall / workers, 1),
               "driver_cpu_s": round(driver_cpu, 2)}
    print(json.dumps(figures), flush=True)
    return figures


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import ray

    from notos.pipeline.executors.ray import RayExecutor

    results = [timed("local", args.n, args.batch_size, None, 1)]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        for workers in (1, 2):
            executor = RayExecutor(resources={"minhash": {"replicas": workers, "num_cpus": 1}})
            timed(f"ray-warmup-{workers}", min(args.n, 2 * args.batch_size), args.batch_size, executor, workers)
            results.append(timed(f"ray-{workers}", args.n, args.batch_size, executor, workers))
    finally:
        ray.shutdown()
    speedup = results[1]["wall_s"] / results[2]["wall_s"]
    summary = {"speedup_2_over_1": round(speedup, 2), "runs": results}
    print(json.dumps({"speedup_2_over_1": summary["speedup_2_over_1"]}))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh)


if __name__ == "__main__":
    main()
