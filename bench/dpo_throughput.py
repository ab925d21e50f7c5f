"""DPO throughput and peak memory: the notos recipe vs a plain TRL DPOTrainer script
(bench/dpo_plain_trl.py) on the same model, data and settings, in one run; then the same with
precomputed reference log-probs. A script, not a test.

    .venv/bin/python bench/dpo_throughput.py [--pairs 40] [--steps 10] [--batch-size 4]
        [--max-length 256] [--threads 1] [--repeat 3] [--json out.json]

Each configuration runs in its own subprocess, one after another (never two at once: they
would share the cores): model = the embedded SmolLM2-135M-Instruct (the converted safetensors
folder), LoRA r 8 / alpha 16 on q/v, beta 0.1, sigmoid loss, lr 5e-4 constant, no eval. On a
CPU fp32 and `--threads` torch threads for both; on a GPU bf16.

- plain TRL:               DPOTrainer, adapter-disabled reference computed at every step
- notos:                   `quickstart-dpo` with the same settings (reference: implicit)
- plain TRL precompute:    DPOTrainer with precompute_ref_log_probs=True (one pass first)
- notos precomputed, 1st:  reference: precomputed; the pass runs and its result is kept
- notos precomputed, rerun: the same command again: the kept log-probs are read back

tokens/s = TRL's own `num_tokens` count (prompt + chosen + rejected tokens trained on) over
`train_runtime` (the training loop: the precompute pass, which runs before it, is in
`wall_seconds`). Peak memory: the process's max RSS (CPU) or max CUDA memory allocated (GPU).
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def notos_worker(args) -> None:
    import resource

    import datasets  # noqa: F401 - imported before the clock starts, as in the plain script
    import peft  # noqa: F401
    import torch
    import trl  # noqa: F401

    from notos.train.recipes import load_recipe
    from notos.train.run import run_recipe

    started = time.perf_counter()
    sets = [f"max_steps={args.steps}", f"batch_size={args.batch_size}", f"max_length={args.max_length}",
            f"threads={args.threads}", f"reference={args.reference}", "max_prompt_length=null", "eval_fraction=0",
            "save_steps=100000", "lr_scheduler=constant", "learning_rate=5.0e-4", "logging_steps=1"]
    (summary,) = run_recipe(load_recipe("quickstart-dpo", sets, args.data), Path(args.out))
    tokens, seconds = summary["final_num_tokens"], summary["train_seconds"]
    print("RESULT " + json.dumps({
        "train_seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
        "wall_seconds": time.perf_counter() - started,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "peak_cuda_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None,
        "final_loss": summary["final_loss"], "ref_logps": summary.get("ref_logps"),
    }), flush=True)


def measure(name: str, command: list[str]) -> dict:
    print(f"-- {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return {"config": name, **json.loads(lines[-1][len("RESULT "):])}


def median_run(runs: list[dict]) -> dict:
    """The run with the median tokens/s (a real run, so its figures belong together)."""
    return sorted(runs, key=lambda r: r["tokens_per_s"])[(len(runs) - 1) // 2]


def write_pairs(path: Path, n: int) -> None:
    source = (ROOT / "src/notos/recipes/data/quickstart_pairs.jsonl").read_text().splitlines()
    path.write_text("".join(source[i % len(source)] + "\n" for i in range(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all configurations; the median is reported")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=["notos"], help=argparse.SUPPRESS)
    parser.add_argument("--reference", default="implicit", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return notos_worker(args)

    from notos.train.models import embedded_model_dir

    model = str(embedded_model_dir())
    work = Path(tempfile.mkdtemp(prefix="dpo-bench-"))
    rounds = []
    try:
        for round_ in range(args.repeat):  # configurations interleaved, so drifting load hits them alike
            data = work / f"data{round_}" / "pairs.jsonl"  # fresh per round: the 1st precomputed run computes
            data.parent.mkdir()
            write_pairs(data, args.pairs)
            common = ["--steps", str(args.steps), "--batch-size", str(args.batch_size),
                      "--max-length", str(args.max_length), "--threads", str(args.threads)]
            plain = [sys.executable, "bench/dpo_plain_trl.py", "--model", model, "--data", str(data), *common]
            ours = [sys.executable, "bench/dpo_throughput.py", "--worker", "notos", "--data", str(data), *common]
            out = work / f"out{round_}"
            rounds.append([
                measure("plain TRL", [*plain, "--out", str(out / "p1")]),
                measure("notos", [*ours, "--out", str(out / "n1")]),
                measure("plain TRL precompute", [*plain, "--precompute", "--out", str(out / "p2")]),
                measure("notos precomputed, 1st", [*ours, "--reference", "precomputed", "--out", str(out / "n2")]),
                measure("notos precomputed, rerun", [*ours, "--reference", "precomputed", "--out", str(out / "n3")]),
            ])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    runs = [median_run([r[i] for r in rounds]) for i in range(len(rounds[0]))]
    base = runs[0]["tokens_per_s"]
    print(f"median of {args.repeat} round(s)")
    print(f"{'config':<26} {'tokens':>7} {'train s':>8} {'tokens/s':>9} {'vs plain':>8} {'wall s':>7} {'peak GB':>8}")
    for r in runs:
        peak = r["peak_cuda_gb"] if r["peak_cuda_gb"] is not None else r["peak_rss_gb"]
        print(f"{r['config']:<26} {r['tokens']:>7.0f} {r['train_seconds']:>8.1f} {r['tokens_per_s']:>9.1f} "
              f"{r['tokens_per_s'] / base:>7.2f}x {r['wall_seconds']:>7.1f} {peak:>8.2f}")
    settings = {k: v for k, v in vars(args).items() if k in ("pairs", "steps", "batch_size", "max_length", "threads", "repeat")}
    report = {"settings": settings, "median": runs, "rounds": rounds}
    print("BENCH_JSON=" + json.dumps(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
