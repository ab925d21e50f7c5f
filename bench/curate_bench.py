#!/usr/bin/env python3
"""Curation at full size, side by side in one run: notos (column-wise) vs two straightforward
per-row implementations of the same steps: a plain Python loop over the records, and
`datasets` with one `.map` / `.filter` per step (how the alignment-handbook scripts do it).

Steps, each starting from the Parquet file of UltraFeedback records (bench/curate_data.py):
read -> audit (critique vs aspect mean, rating vs rationale, duplicates) -> binarize by critique
score -> binarize by mean of aspects -> compare the two -> 13-gram decontamination against the
benchmark prompts. Each implementation runs in its own child process, so peak RSS is its own.

    .venv/bin/python bench/curate_data.py --out /tmp/uf64k.parquet --benchmark /tmp/bench.jsonl
    .venv/bin/python bench/curate_bench.py --data /tmp/uf64k.parquet --benchmark /tmp/bench.jsonl
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_notos(data: str, benchmark: str) -> dict:
    from notos.curate.audit import audit
    from notos.curate.binarize import binarize
    from notos.curate.compare import compare
    from notos.curate.decontaminate import decontaminate, read_benchmark
    from notos.data.records import read_completions

    times = {}
    t = time.perf_counter()
    completions = read_completions(data)
    times["read"] = time.perf_counter() - t
    t = time.perf_counter()
    flags, _ = audit(completions)
    times["audit"] = time.perf_counter() - t
    t = time.perf_counter()
    by_overall = binarize(completions, "overall", seed=0)
    by_mean = binarize(completions, "mean", seed=0)
    times["binarize x2"] = time.perf_counter() - t
    t = time.perf_counter()
    comparison = compare(by_overall, by_mean)
    times["compare"] = time.perf_counter() - t
    t = time.perf_counter()
    kept, removals = decontaminate(completions, read_benchmark([benchmark]), ngram=13)
    times["decontaminate"] = time.perf_counter() - t
    return {"times": times, "flagged": flags.num_rows, "pairs": [by_overall.num_rows, by_mean.num_rows],
            "chosen_differs": round(comparison["chosen_differs"], 4), "removed": removals.num_rows}


# --- the straightforward version: a loop over records, the way one writes it first ----------

NEGATIVE = ("incorrect", "inaccurate", "fails to", "does not address", "irrelevant", "hallucinat", "misleading",
            "wrong", "not helpful", "severe", "contradicts", "fabricat")
POSITIVE = ("accurate", "correct", "fully aligns", "comprehensive", "excellent", "highly informative")
ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")


def _rating(annotation):
    value = (annotation or {}).get("Rating")
    return None if value in (None, "N/A") else float(value)


def _rationale(annotation):
    annotation = annotation or {}
    return annotation.get("Rationale For Rating") or annotation.get("Rationale") or ""


def audit_record(record) -> list[list[str]]:
    """The flags of each completion of one record, the way one writes it first."""
    flags, seen = [], set()
    for completion in record["completions"]:
        own = []
        ratings = [_rating(completion["annotations"].get(a)) for a in ASPECTS]
        known = [r for r in ratings if r is not None]
        mean = sum(known) / len(known) if known else None
        overall = completion.get("overall_score")
        if mean is not None and overall is not None and abs((overall - 1) / 9 - (mean - 1) / 4) >= 0.5:
            own.append("critique_disagrees")
        for aspect, rating in zip(ASPECTS, ratings):
            text = _rationale(completion["annotations"].get(aspect)).lower()
            if rating is not None and ((rating >= 4 and any(w in text for w in NEGATIVE))
                                       or (rating <= 2 and any(w in text for w in POSITIVE))):
                own.append("contradiction")
        key = completion["response"].strip().lower()
        if key in seen:
            own.append("duplicate")
        seen.add(key)
        flags.append(own)
    return flags


def pick_pair(record, score_of):
    """(chosen, rejected) completion indices: the best, and a random strictly lower one."""
    import random

    scores = [(score_of(c), k) for k, c in enumerate(record["completions"])]
    scores = [(s, k) for s, k in scores if s is not None]
    if len(scores) < 2:
        return None
    rng = random.Random(f"0:{record['instruction']}")
    best = max(s for s, _ in scores)
    chosen = rng.choice([k for s, k in scores if s == best])
    lower = [k for s, k in scores if s < best]
    return (chosen, rng.choice(lower)) if lower else None


def overall_score(completion):
    return completion.get("overall_score")


def mean_score(completion):
    known = [r for r in (_rating(completion["annotations"].get(a)) for a in ASPECTS) if r is not None]
    return sum(known) / len(known) if known else None


def _words(text):
    import re

    return re.sub(r"[^\w\s]", " ", text.casefold()).split()


def _grams(words):
    return {tuple(words[j:j + 13]) for j in range(max(len(words) - 12, 1))}


def benchmark_grams(benchmark: str) -> set:
    grams = set()
    with open(benchmark) as fh:
        for line in fh:
            for turn in json.loads(line)["turns"]:
                grams |= _grams(_words(turn))
    return grams


def contaminated(record, bench_grams: set) -> bool:
    return (record.get("source") or "").lower() == "truthful_qa" or bool(_grams(_words(record["instruction"])) & bench_grams)


def chosen_differs(chosen_a: dict, chosen_b: dict) -> float:
    both = [k for k in chosen_a if k in chosen_b]
    return sum(chosen_a[k] != chosen_b[k] for k in both) / max(len(both), 1)


def run_plain(data: str, benchmark: str) -> dict:
    import pyarrow.parquet as pq

    times = {}
    t = time.perf_counter()
    records = pq.read_table(data).to_pylist()
    times["read"] = time.perf_counter() - t

    t = time.perf_counter()
    flagged = sum(bool(f) for record in records for f in audit_record(record))
    times["audit"] = time.perf_counter() - t

    t = time.perf_counter()
    by_overall = {i: pick_pair(r, overall_score) for i, r in enumerate(records)}
    by_mean = {i: pick_pair(r, mean_score) for i, r in enumerate(records)}
    pairs = {name: [{"prompt": [{"role": "user", "content": records[i]["instruction"]}],
                     "chosen": [{"role": "assistant", "content": records[i]["completions"][c]["response"]}],
                     "rejected": [{"role": "assistant", "content": records[i]["completions"][r]["response"]}]}
                    for i, p in chosen.items() if p for c, r in [p]]
             for name, chosen in (("overall", by_overall), ("mean", by_mean))}
    times["binarize x2"] = time.perf_counter() - t

    t = time.perf_counter()
    differs = chosen_differs({i: p[0] for i, p in by_overall.items() if p}, {i: p[0] for i, p in by_mean.items() if p})
    times["compare"] = time.perf_counter() - t

    t = time.perf_counter()
    grams = benchmark_grams(benchmark)
    removed = sum(contaminated(record, grams) for record in records)
    times["decontaminate"] = time.perf_counter() - t
    return {"times": times, "flagged": flagged, "pairs": [len(pairs["overall"]), len(pairs["mean"])],
            "chosen_differs": round(differs, 4), "removed": removed}


def run_datasets(data: str, benchmark: str) -> dict:
    """The same steps the way the alignment-handbook / Notus scripts write them: `datasets`
    loaded from Parquet, one `.map` / `.filter` per step, a Python function per row."""
    import datasets

    datasets.disable_progress_bars()
    times = {}
    t = time.perf_counter()
    ds = datasets.load_dataset("parquet", data_files=data, split="train", keep_in_memory=True)
    times["read"] = time.perf_counter() - t

    t = time.perf_counter()
    audited = ds.map(lambda record: {"audit_flags": audit_record(record)}, keep_in_memory=True)
    flagged = sum(bool(f) for row in audited["audit_flags"] for f in row)
    times["audit"] = time.perf_counter() - t

    def binarize_row(record, score_of, strategy):
        found = pick_pair(record, score_of)
        if found is None:
            return {"chosen": None, "rejected": None, "index_chosen": -1, "strategy": strategy}
        chosen, rejected = found
        return {"chosen": [{"role": "assistant", "content": record["completions"][chosen]["response"]}],
                "rejected": [{"role": "assistant", "content": record["completions"][rejected]["response"]}],
                "index_chosen": chosen, "strategy": strategy}

    t = time.perf_counter()
    by_strategy = {
        name: ds.map(binarize_row, fn_kwargs={"score_of": score_of, "strategy": name}, keep_in_memory=True)
                .filter(lambda r: r["index_chosen"] >= 0, keep_in_memory=True)
        for name, score_of in (("overall", overall_score), ("mean", mean_score))
    }
    times["binarize x2"] = time.perf_counter() - t

    t = time.perf_counter()
    chosen = {name: dict(zip(d["instruction"], d["index_chosen"])) for name, d in by_strategy.items()}
    differs = chosen_differs(chosen["overall"], chosen["mean"])
    times["compare"] = time.perf_counter() - t

    t = time.perf_counter()
    grams = benchmark_grams(benchmark)
    kept = ds.filter(lambda record: not contaminated(record, grams), keep_in_memory=True)
    times["decontaminate"] = time.perf_counter() - t
    return {"times": times, "flagged": flagged, "pairs": [len(d) for d in by_strategy.values()],
            "chosen_differs": round(differs, 4), "removed": len(ds) - len(kept)}


RUNNERS = {"notos": run_notos, "plain": run_plain, "datasets": run_datasets}


def child(which: str, data: str, benchmark: str) -> None:
    t = time.perf_counter()
    result = RUNNERS[which](data, benchmark)
    result["total_s"] = round(time.perf_counter() - t, 2)
    result["times"] = {k: round(v, 2) for k, v in result["times"].items()}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--child", choices=list(RUNNERS))
    p.add_argument("--only", default="notos,plain,datasets", help="which implementations to run, in this order")
    args = p.parse_args()
    if args.child:
        child(args.child, args.data, args.benchmark)
        return
    results = {}
    for which in args.only.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", which, "--data", args.data, "--benchmark", args.benchmark],
                             capture_output=True, text=True, check=True)
        results[which] = json.loads(out.stdout.strip().splitlines()[-1])
        print(which, json.dumps(results[which]))
    for other in [w for w in results if w != "notos"]:
        print(f"{other} / notos: {results[other]['total_s'] / results['notos']['total_s']:.1f}x")


if __name__ == "__main__":
    main()
