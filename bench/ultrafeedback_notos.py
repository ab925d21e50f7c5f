#!/usr/bin/env python3
"""The UltraFeedback-shaped workload of ../shared/bench on notos: N instructions, 3 generators
(models m1, m2, m3) per row, grouped, then 1 judge call rating the 3 answers (overall-rating,
text mode: the judge writes the sections) => 4N chat completions. Resume is ON: every batch
of every LLM step is committed to the run folder as it completes.

    .venv/bin/python bench/ultrafeedback_notos.py --base-url http://127.0.0.1:18787/v1 --n 4000 --out r.json

`--recipe`: the shipped `ultrafeedback` recipe instead, exactly as a user runs it (a `notos run`
process: 6-generator pool, 3 drawn per row, critique off, one overall rating) on the same N
instructions written to a JSONL file — the same 4N requests, to the ideal's models (the pool
spread over m1, m2, m3; the judge on `judge`):

    notos run ultrafeedback --input prompts.jsonl --llm-base-url URL --llm-models m1,m2,m3 \
        --llm-model judge --set critique.enabled=false --set rate.aspects=overall-rating \
        --out RUN --no-progress

`--one-model`: without --llm-models / --llm-model, every LLM on the server's first model, so
every request shares one client's 64 slots (the ideal has 4 x 50).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

T_START = time.time()

from generation_common import instructions, parse_args, report  # noqa: E402


def main() -> None:
    args = parse_args(
        (("--max-concurrency",), {"type": int, "default": 50, "help": "requests in flight per model (the ideal's lanes: 50)"}),
        (("--batch-size",), {"type": int, "default": 50}),
        (("--recipe",), {"action": "store_true", "help": "run the shipped ultrafeedback recipe with `notos run`"}),
        (("--set",), {"action": "append", "default": [], "help": "extra --set for --recipe"}),
        (("--one-model",), {"action": "store_true", "help": "--recipe: every LLM on one model"}),
    )
    if args.recipe:
        return run_recipe(args)
    # Imported here, not above: with --recipe this process only waits for `notos run`, and its
    # tree's peak RSS (measure.py) must be the recipe's.
    import pyarrow.parquet as pq

    from notos.pipeline import Pipeline, from_rows, group_columns, run
    from notos.tasks import text_generation, ultrafeedback_rating

    def llm(model):
        return {"backend": "openai", "base_url": args.base_url, "model": model, "max_concurrency": args.max_concurrency}

    source = from_rows(rows=[{"instruction": text} for text in instructions(args.n)], name="load_data")
    generators = [text_generation(name=f"text_generation_{m}", max_new_tokens=args.max_new_tokens, llm=llm(m))
                  for m in ("m1", "m2", "m3")]
    group = group_columns(["generation", "model_name"], ["generations", "generation_models"], name="combine")
    rate = ultrafeedback_rating(name="rate", llm=llm("judge"), aspects="overall-rating", mode="text",
                                max_new_tokens=args.max_new_tokens)
    source >> generators >> group >> rate
    with tempfile.TemporaryDirectory(prefix="notos-bench-") as folder:
        t0 = time.time()
        result = run(Pipeline(source, batch_size=args.batch_size), folder, progress=False)
        # pyarrow, not load_run: `datasets` would add its own ~100 MB to the peak measured here
        ratings = pq.read_table(f"{folder}/data/rate", columns=["ratings"]).column("ratings").to_pylist()
    valid = sum(1 for r in ratings if r and len(r) == 3 and all(isinstance(x, int) and 1 <= x <= 5 for x in r))
    report(args, T_START, t0, rows=len(ratings), valid_ratings_rows=valid,
           failed={k: v["rows_failed"] for k, v in result.stats.items()})


def run_recipe(args) -> None:
    with tempfile.TemporaryDirectory(prefix="notos-bench-") as folder:
        prompts = os.path.join(folder, "prompts.jsonl")
        with open(prompts, "w") as fh:
            fh.writelines(json.dumps({"id": f"p{i:06d}", "instruction": text}) + "\n"
                          for i, text in enumerate(instructions(args.n)))
        sets = ["critique.enabled=false", "rate.aspects=overall-rating", *args.set]
        command = [os.path.join(os.path.dirname(sys.executable), "notos"), "run", "ultrafeedback", "--input", prompts,
                   "--llm-base-url", args.base_url, "--out", os.path.join(folder, "run"), "--no-progress"]
        command += [part for value in sets for part in ("--set", value)]
        if not args.one_model:
            command += ["--llm-models", "m1,m2,m3", "--llm-model", "judge"]
        t0 = time.time()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"notos run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        import pyarrow.parquet as pq  # after the run: not in the measured peak
        table = pq.read_table(os.path.join(folder, "run", "data", "records"), columns=["completions"])
        records = table.column("completions").to_pylist()
        with open(os.path.join(folder, "run", "stats.json")) as fh:
            stats = json.load(fh)
    def rated(completion: dict) -> bool:
        rating = ((completion.get("annotations") or {}).get("overall_rating") or {}).get("Rating")
        return rating in ("1", "2", "3", "4", "5")

    valid = sum(1 for r in records if r and len(r) == 3 and all(rated(c) for c in r))
    report(args, T_START, t0, rows=len(records), valid_rows=valid,
           failed={k: v["rows_failed"] for k, v in stats.items() if k != "_totals"})


if __name__ == "__main__":
    main()
