#!/usr/bin/env python3
"""Tokens/s of the embedded SmolLM2-135M-Instruct GGUF, transformers vs llama.cpp, at batch 1
and batch 8 (greedy, 64 new tokens, the same prompts for both).

    .venv/bin/python bench/embedded_tokens_per_s.py --threads 1 --repeats 3

llama.cpp has no batched generation in its Python binding: its "batch 8" runs the 8 one after
another, which is what a notos step gets from it.
"""

import argparse
import asyncio
import json
import statistics
import time

from notos.llms.spec import build_llm
from notos.llms.types import GenerationParams

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


def rate(llm, batch: int, repeats: int) -> tuple[float, list[float]]:
    params = GenerationParams(max_new_tokens=64, temperature=0)
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS[:batch]]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        outs = asyncio.run(llm.generate(conversations, params))
        seconds = time.perf_counter() - started
        rates.append(sum(o.completion_tokens for o in outs) / seconds)
    return statistics.median(rates), rates


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backends", default="transformers,llamacpp")
    args = p.parse_args()
    results = []
    for backend in args.backends.split(","):
        started = time.perf_counter()
        llm = build_llm({"backend": backend, "model": "embedded", "threads": args.threads})
        if backend == "transformers":
            llm.load()
        load_s = time.perf_counter() - started
        asyncio.run(llm.generate([[{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=4, temperature=0)))
        for batch in (1, 8):
            median, runs = rate(llm, batch, args.repeats)
            results.append({"backend": backend, "threads": args.threads, "batch": batch, "tok_s": round(median, 1),
                            "runs": [round(r, 1) for r in runs], "load_s": round(load_s, 2)})
            print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
