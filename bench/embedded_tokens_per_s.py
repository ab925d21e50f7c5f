#!/usr/bin/env python3
"""Tokens/s of the embedded SmolLM2-135M-Instruct: the transformers backend before issue 17
(`--before-ref`, read from git) and now, side by side in one process, alternating.

    .venv/bin/python bench/embedded_tokens_per_s.py --repeats 2
    .venv/bin/python bench/embedded_tokens_per_s.py --cases quickstart --threads 1,2   # the threads lever

Cases (greedy unless said; new tokens fixed by --tokens):
  batch1       one prompt                                   (per-stream speed)
  batch1_t07   one prompt at temperature 0.7                (now: the bfloat16 lane)
  batch8       eight prompts in one call
  batch24      24 rows in one call (the eight prompts under three system prompts): the batched rate
  quickstart   the quickstart's load: three generator steps (one model, three system prompts,
               temperatures 0.7/0.7/1.0, seeds 1-3) over 8 prompts each, as three concurrent
               calls, plus a judge rating 8 answers by log-probabilities at the same time
llama.cpp (`--backends ...,llamacpp`) is measured too where llama-cpp-python is installed.
Loading is measured by bench/embedded_load.py (separate processes).
"""

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from notos.llms.types import GenerationParams

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "Compose an engaging travel blog post about a recent trip to Hawaii.",
    "Explain how a refrigerator keeps food cold.",
    "Write a short poem about autumn leaves.",
    "What are three tips for learning a new language?",
    "Describe the water cycle to a ten-year-old.",
    "Give me a recipe idea that uses lentils.",
    "Why is the sky blue?",
    "Summarise the plot of Romeo and Juliet in a few sentences.",
]
GENERATORS = [  # the quickstart recipe's pool
    ("You are a helpful assistant. Answer the request completely and clearly.", 0.7, 1),
    ("You are an honest assistant. Say plainly when you are not sure, and never make facts up.", 0.7, 2),
    ("You are a concise assistant. Answer in as few words as the request allows.", 1.0, 3),
]
JUDGE = ("Rate how well the answer follows the instruction, from 1 (not at all) to 5 (fully).\n\n"
         "Instruction: {q}\n\nAnswer: {a}\n\nReply with 'Rating: N'.")


def before_backend(ref: str):
    """hf_local.py as it was at `ref`, imported under another name beside today's."""
    source = subprocess.run(["git", "show", f"{ref}:src/notos/llms/hf_local.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "hf_local_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("hf_local_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TransformersLLM


def user(text, system=None):
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]


async def quickstart_load(llm, tokens: int) -> dict:
    """Three generator calls and a judge call at once, as the quickstart's steps run them."""
    started = time.perf_counter()

    async def generator(system, temperature, seed):
        params = GenerationParams(max_new_tokens=tokens, temperature=temperature, seed=seed)
        outs = await llm.generate([user(p, system) for p in PROMPTS], params)
        return sum(o.completion_tokens for o in outs)

    async def judge():
        rows = [user(JUDGE.format(q=p, a="I am not sure, but here is a short answer. " * 6)) for p in PROMPTS]
        scores = await llm.score_candidates(rows, ["1", "2", "3", "4", "5"], prefix="Rating: ")
        assert all(s.error is None for s in scores), [s.error for s in scores]
        return time.perf_counter() - started

    *counts, judge_s = await asyncio.gather(*(generator(*g) for g in GENERATORS), judge())
    seconds = time.perf_counter() - started
    return {"tok_s": sum(counts) / seconds, "wall_s": seconds, "judge_done_s": judge_s, "tokens": sum(counts)}


async def plain(llm, batch: int, tokens: int, temperature: float) -> dict:
    params = GenerationParams(max_new_tokens=tokens, temperature=temperature, seed=1)
    started = time.perf_counter()
    systems = [None] + [system for system, _, _ in GENERATORS]  # past 8 rows: the prompts again under each system prompt
    conversations = [user(p, systems[k // len(PROMPTS)]) for k, p in enumerate(PROMPTS * 4)][:batch]
    outs = await llm.generate(conversations, params)
    seconds = time.perf_counter() - started
    return {"tok_s": sum(o.completion_tokens for o in outs) / seconds, "wall_s": seconds}


CASES = {
    "batch1": lambda llm, n: plain(llm, 1, n, 0.0),
    "batch1_t07": lambda llm, n: plain(llm, 1, n, 0.7),
    "batch8": lambda llm, n: plain(llm, 8, n, 0.0),
    "batch24": lambda llm, n: plain(llm, 24, n, 0.0),
    "quickstart": quickstart_load,
}


def build(name: str, threads: int, before_ref: str):
    if name == "before":
        llm = before_backend(before_ref)(threads=threads)
    elif name == "after":
        from notos.llms.hf_local import TransformersLLM

        llm = TransformersLLM(threads=threads)
    else:
        from notos.llms.spec import build_llm

        return build_llm({"backend": "llamacpp", "model": "embedded", "threads": threads})
    llm.load()
    return llm


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", default="1", help="comma-separated; each is measured, alternating")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--cases", default="batch1,batch1_t07,batch8,quickstart")
    p.add_argument("--backends", default="before,after", help="before, after, llamacpp")
    p.add_argument("--before-ref", default="dac4333", help="the commit whose hf_local.py is 'before'")
    args = p.parse_args()
    import torch

    thread_counts = [int(t) for t in args.threads.split(",")]
    llms = {name: build(name, thread_counts[0], args.before_ref) for name in args.backends.split(",")}
    for llm in llms.values():  # warm-up: first-call allocations and lazy imports
        asyncio.run(llm.generate([user("Hi")], GenerationParams(max_new_tokens=4, temperature=0)))
        asyncio.run(llm.generate([user("Hi")], GenerationParams(max_new_tokens=4, temperature=0.7)))
    runs: dict[tuple, list[dict]] = {}
    for _ in range(args.repeats):
        for case in args.cases.split(","):
            for threads in thread_counts:
                for name, llm in llms.items():  # alternating: the machine's other load hits all alike
                    torch.set_num_threads(threads)
                    result = asyncio.run(CASES[case](llm, args.tokens))
                    runs.setdefault((case, threads, name), []).append(result)
                    print(json.dumps({"case": case, "threads": threads, "backend": name,
                                      **{k: round(v, 2) for k, v in result.items()}}), flush=True)
    print("\nmedian tok/s (ratio to before, same run)", file=sys.stderr)
    for (case, threads, name), results in runs.items():
        median = statistics.median(r["tok_s"] for r in results)
        before = runs.get((case, threads, "before"))
        ratio = median / statistics.median(r["tok_s"] for r in before) if before else float("nan")
        print(f"{case:11s} threads={threads} {name:8s} {median:7.1f} tok/s  x{ratio:.2f}  "
              f"load avg {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
