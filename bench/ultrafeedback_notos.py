#!/usr/bin/env python3
"""The UltraFeedback-shaped workload of ../shared/bench on notos: N instructions, 3 generators
(models m1, m2, m3) per row, grouped, then 1 judge call rating the 3 answers (overall-rating,
text mode: the judge writes the sections) => 4N chat completions. Resume is ON: every batch
of every LLM step is committed to the run folder as it completes.

    .venv/bin/python bench/ultrafeedback_notos.py --base-url http://127.0.0.1:18787/v1 --n 4000 --out r.json
"""

import tempfile
import time

T_START = time.time()

import pyarrow.parquet as pq  # noqa: E402
from generation_common import instructions, parse_args, report  # noqa: E402

from notos.pipeline import Pipeline, from_rows, group_columns, run  # noqa: E402
from notos.tasks import text_generation, ultrafeedback_rating  # noqa: E402


def main() -> None:
    args = parse_args(
        (("--max-concurrency",), {"type": int, "default": 50, "help": "requests in flight per model (the ideal's lanes: 50)"}),
        (("--batch-size",), {"type": int, "default": 50}),
    )

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


if __name__ == "__main__":
    main()
