#!/usr/bin/env python3
"""A CPU-bound step on the Ray executor with 1 and 2 worker processes, beside the local executor:
MinHash signatures (64 seeded hashes over word 3-shingles, pure Python, ~1-2 ms a row) of N
UltraFeedback-like prompts — the core of near-duplicate removal over a 64k x 4 dataset.

    .venv/bin/python bench/ray_cpu_scaling.py --n 20000

One Ray instance (num_cpus=2) for all Ray runs, started before the clock. The prompts are
written to a JSONL file before the clock too, and read by `load_data` (as
ultrafeedback_full.py does): a `from_rows` list of 16k rows would put them all into the run's
pipeline.yaml, ~3 s of YAML writing on the driver before any batch, in every run. Prints per
run: wall, rows/s, rows/s per worker, the driver's own CPU seconds (its overhead: reading,
routing, queues, shipping batches), each worker's busy seconds (the sum of its batches' compute
time, as the worker timed them: how much the workers overlapped), and the speed-up of 2 workers
over 1. Resume is on (the leaf commits).

Before the runs, two Ray actors spin for 2 s each: the CPU seconds they get per wall second
(`cores_free_for_2_workers`, before the Ray runs and after them; 2.0 on an idle 2-core
machine) bound what 2 workers can gain over
1 on this machine at this moment; on a machine shared with other jobs the speed-up is read
against it.
"""

import argparse
import hashlib
import json
import os
import resource
import tempfile
import time

from notos.pipeline import Pipeline, load_data, run, step

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


def write_prompts(n: int, folder: str) -> str:
    path = os.path.join(folder, f"prompts-{n}.jsonl")
    with open(path, "w") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in prompts(n))
    return path


def build(path: str, batch_size: int) -> Pipeline:
    src = load_data(path, id_column="id")
    src >> minhash()
    return Pipeline(src, name="minhash", batch_size=batch_size)


def timed(label: str, path: str, n: int, batch_size: int, executor, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="notos-ray-cpu-") as folder:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = run(build(path, batch_size), folder, progress=False, executor=executor)
        wall = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    driver_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    figures = {"run": label, "workers": workers, "rows": result.rows["minhash"], "wall_s": round(wall, 2),
               "rows_per_s": round(n / wall, 1), "rows_per_s_per_worker": round(n / wall / workers, 1),
               "driver_cpu_s": round(driver_cpu, 2), "step_seconds": result.stats["minhash"]["seconds"]}
    if executor is not None and hasattr(executor, "busy_seconds"):  # not on an engine from before it
        figures["worker_busy_s"] = [round(t, 2) for t in executor.busy_seconds().get("minhash", [])]
    print(json.dumps(figures), flush=True)
    return figures


def cores_free(ray, seconds: float = 2.0) -> float:
    """CPU seconds two spinning 1-CPU actors get per wall second, together."""

    @ray.remote(num_cpus=1)
    class Spinner:
        def spin(self, wall: float) -> float:
            started, cpu = time.time(), time.process_time()
            while time.time() - started < wall:
                pass
            return time.process_time() - cpu

    spinners = [Spinner.remote() for _ in range(2)]
    ray.get([s.spin.remote(0.01) for s in spinners])  # both started before the clock
    got = sum(ray.get([s.spin.remote(seconds) for s in spinners])) / seconds
    for spinner in spinners:
        ray.kill(spinner)
    return round(got, 2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import ray

    from notos.pipeline.executors.ray import RayExecutor

    scratch = tempfile.TemporaryDirectory(prefix="notos-ray-prompts-")
    path, warmup = (write_prompts(n, scratch.name) for n in (args.n, min(args.n, 2 * args.batch_size)))
    results = [timed("local", path, args.n, args.batch_size, None, 1)]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        free = [cores_free(ray)]
        for workers in (1, 2):
            executor = RayExecutor(resources={"minhash": {"replicas": workers, "num_cpus": 1}})
            timed(f"ray-warmup-{workers}", warmup, min(args.n, 2 * args.batch_size), args.batch_size, executor, workers)
            results.append(timed(f"ray-{workers}", path, args.n, args.batch_size, executor, workers))
        free.append(cores_free(ray))  # before the Ray runs and after them
    finally:
        ray.shutdown()
        scratch.cleanup()
    speedup = results[1]["wall_s"] / results[2]["wall_s"]
    summary = {"speedup_2_over_1": round(speedup, 2), "cores_free_for_2_workers": free, "runs": results}
    print(json.dumps({"speedup_2_over_1": summary["speedup_2_over_1"], "cores_free_for_2_workers": free}))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh)


if __name__ == "__main__":
    main()
