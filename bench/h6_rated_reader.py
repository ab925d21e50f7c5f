"""How fast a run's rated generations (the quickstart recipe's output shape) become the
completions table curation reads: 64k prompts x 4 generations, one aspect plus rationales.

    .venv/bin/python bench/h6_rated_reader.py [prompts]
"""

import sys
import time

import pyarrow as pa

from notos.data.records import normalize


def table(n: int) -> pa.Table:
    gens = [[f"answer {i} {k} " * 20 for k in range(4)] for i in range(n)]
    return pa.table({"row_id": [f"p{i}" for i in range(n)], "instruction": [f"question {i}" for i in range(n)],
                     "generations": gens, "generation_models": [["m1", "m2", "m3", "m4"]] * n,
                     "ratings": [[1 + (i + k) % 5 for k in range(4)] for i in range(n)],
                     "ratings_expected": [[3.0] * 4] * n, "rationales": [["because"] * 4] * n})


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
    raw = table(n)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        c = normalize(raw)
        best = min(best, time.perf_counter() - start)
    print(f"{n} prompts x 4 generations -> {c.table.num_rows} completion rows: best of 3 {best:.3f} s")
