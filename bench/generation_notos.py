#!/usr/bin/env python3
"""Generation-only workload on notos: N instructions, 3 generators (models m1, m2, m3) per row,
grouped into one row, against an OpenAI-compatible server (../shared/bench/fake_openai_server.py).

    .venv/bin/python bench/generation_notos.py --base-url http://127.0.0.1:18787/v1 --n 4000 --out r.json
"""

import tempfile
import time

T_START = time.time()

import pyarrow.parquet as pq  # noqa: E402
from generation_common import count_valid, instructions, parse_args, report  # noqa: E402

from notos.pipeline import Pipeline, from_rows, group_columns, run  # noqa: E402
from notos.tasks import text_generation  # noqa: E402


def main() -> None:
    args = parse_args(
        (("--max-concurrency",), {"type": int, "default": 50, "help": "requests in flight per model (the ideal's lanes: 50)"}),
    )
    source = from_rows(rows=[{"instruction": text} for text in instructions(args.n)], name="load_data")
    generators = [
        text_generation(name=f"text_generation_{m}", max_new_tokens=args.max_new_tokens,
                        llm={"backend": "openai", "base_url": args.base_url, "model": m, "max_concurrency": args.max_concurrency})
        for m in ("m1", "m2", "m3")
    ]
    group = group_columns(["generation", "model_name"], ["generations", "generation_models"], name="combine")
    source >> generators >> group
    with tempfile.TemporaryDirectory(prefix="notos-bench-") as folder:
        t0 = time.time()
        result = run(Pipeline(source), folder, progress=False)
        # pyarrow, not load_run: `datasets` would add its own ~100 MB to the peak measured here
        generations = pq.read_table(f"{folder}/data/combine", columns=["generations"]).column("generations").to_pylist()
    report(args, T_START, t0, rows=len(generations), valid_rows=count_valid(generations),
           failed={k: v["rows_failed"] for k, v in result.stats.items()})


if __name__ == "__main__":
    main()
