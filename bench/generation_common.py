"""What the three generation benchmark scripts share: arguments, the prompts, the report.
Plain stdlib: it is imported from the notos venv and from the distilabel venv."""

import argparse
import json
import time


def parse_args(*extra: tuple) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200, help="instructions (rows)")
    p.add_argument("--base-url", default="http://127.0.0.1:18787/v1")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--out", default=None, help="write the result JSON here")
    for flags, options in extra:
        p.add_argument(*flags, **options)
    return p.parse_args()


def instructions(n: int) -> list[str]:
    return [f"Synthetic instruction #{i}: explain topic {i % 97} in a few sentences." for i in range(n)]


def count_valid(generation_lists) -> int:
    """Rows whose 3 generations are all non-empty text."""
    return sum(1 for g in generation_lists if g and len(g) == 3 and all(isinstance(x, str) and x for x in g))


def report(args, started: float, run_started: float, **figures) -> None:
    result = {"n": args.n, **figures, "run_s": round(time.time() - run_started, 2), "total_s": round(time.time() - started, 2)}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh)
