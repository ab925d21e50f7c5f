#!/usr/bin/env python3
"""UltraFeedback at its real size and schema, with planted defects and a truth file: the data of
the one-pass curation benchmark (bench/curate_onepass_bench.py). Not a test.

What `bench/curate_data.py` writes (openbmb/UltraFeedback's layout: nested annotations per
aspect with Rating / Rationale / Type / "Rationale For Rating", critique, overall_score, 17
models, sources in UltraFeedback's proportions incl. truthful_qa and the flan sets, planted
critique disagreements, rationale contradictions, duplicate responses, benchmark questions in
the prompts), at UltraFeedback's lengths (responses 80-560 words, critiques 20-80, rationales
15-40: ~850 MB JSONL / ~420 MB Parquet at 64k prompts), plus planted duplicate prompts:

  - exact copies (~0.5% of records): another record's prompt, upper-cased or re-spaced;
  - near copies (~2%): another record's 20-110-word prompt with 1, 2 or 3 word edits
    (a word replaced, inserted or deleted), a third of each.

Copies never overwrite a truthful_qa or benchmark-planted record, nor a record that is itself
copied. Parquet row groups of 2,000 records (what `datasets` writes is of that order). Above
64,000 prompts the data is made in parts of 64,000 (seeds seed, seed+1, ...) streamed into one
file, so the generator's memory stays that of one part; the benchmark questions are part 0's
(the truth lists what every part planted, record numbers counted over the whole file).

    .venv/bin/python bench/uf_full_data.py --n 64000 --out /tmp/uf64k --jsonl
    # -> /tmp/uf64k/records.parquet (and records.jsonl), bench.jsonl, truth.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from curate_data import WORDS, benchmark, build

LENGTHS = {"response_words": (80, 560), "critique_words": (20, 80), "rationale_words": (15, 40)}
ROW_GROUP = 2000
PART = 64_000


def _merge_truth(truth: dict, planted: dict, offset: int) -> None:
    """Add one part's truth, its record numbers moved by offset (the first field of each entry,
    and every field of copies: [copy, original(, edits)])."""
    for key, items in planted.items():
        out = truth.setdefault(key, {} if isinstance(items, dict) else [])
        if isinstance(items, dict):  # benchmark plants: question id -> {record, how}
            out.update({q: {**p, "record": p["record"] + offset} for q, p in items.items()})
        elif key.endswith("_copies"):
            out.extend([[c + offset, o + offset, *rest] for c, o, *rest in items])
        else:
            out.extend([[r[0] + offset, *r[1:]] if isinstance(r, list) else r + offset for r in items])


def plant_copies(table: pa.Table, truth: dict, seed: int, exact_share=0.005, near_share=0.02) -> tuple[pa.Table, dict]:
    rng = np.random.default_rng(seed + 7)
    prompts = table.column("instruction").to_pylist()
    sources = table.column("source").to_pylist()
    n = len(prompts)
    taken = {p["record"] for p in truth.get("benchmark_plants", {}).values()}
    taken |= {i for i, s in enumerate(sources) if s == "truthful_qa"}
    order = [int(i) for i in rng.permutation(n) if int(i) not in taken]
    n_exact, n_near = int(n * exact_share), int(n * near_share)
    originals, targets, used = [], [], set()
    pool = iter(order)
    exact, near = [], []
    for kind, count in (("exact", n_exact), ("near", n_near)):
        while len(exact if kind == "exact" else near) < count:
            original, target = next(pool, None), next(pool, None)
            if original is None or target is None:
                break
            words = prompts[original].split()
            if kind == "near" and not 20 <= len(words) <= 110:
                continue
            used |= {original, target}
            originals.append(original)
            targets.append(target)
            if kind == "exact":
                text = prompts[original].upper() if rng.random() < 0.5 else "  " + prompts[original].replace(" ", "  ")
                exact.append([target, original])
            else:
                edits = len(near) % 3 + 1
                text = _edit(words, edits, rng)
                near.append([target, original, edits])
            prompts[target] = text
    table = table.set_column(table.schema.get_field_index("instruction"), "instruction", pa.array(prompts, pa.string()))
    truth["exact_copies"], truth["near_copies"] = exact, near  # [copy record, original record(, edits)]
    return table, truth


def _edit(words: list[str], edits: int, rng) -> str:
    words = list(words)
    for _ in range(edits):
        at = int(rng.integers(0, len(words)))
        new = WORDS[int(rng.integers(0, len(WORDS)))]
        kind = ("replace", "insert", "delete")[int(rng.integers(0, 3))]
        if kind == "replace":
            words[at] = new if new != words[at] else new + "s"
        elif kind == "insert":
            words.insert(at, new)
        elif len(words) > 2:
            del words[at]
    return " ".join(words)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64_000, help="prompts (each with 4 completions)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (records.parquet, bench.jsonl, truth.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jsonl", action="store_true", help="also write records.jsonl")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    writer, truth, done = None, {}, 0
    for part, size in enumerate([PART] * (args.n // PART) + ([args.n % PART] if args.n % PART else [])):
        table, planted = build(size, args.seed + part, **LENGTHS)
        table, questions, planted["benchmark_plants"] = benchmark(table, args.seed + part)
        table, planted = plant_copies(table, planted, args.seed + part)
        planted["truthful_qa_records"] = np.flatnonzero(pc.equal(table.column("source"), "truthful_qa")
                                                        .to_numpy(zero_copy_only=False)).tolist()
        if part == 0:
            (args.out / "bench.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
            writer = pq.ParquetWriter(args.out / "records.parquet", table.schema)
        else:
            planted.pop("benchmark_plants")  # questions of another set, not in bench.jsonl
        _merge_truth(truth, planted, done)
        writer.write_table(table, row_group_size=ROW_GROUP)
        done += table.num_rows
    writer.close()
    (args.out / "truth.json").write_text(json.dumps(truth))
    sizes = {"parquet": (args.out / "records.parquet").stat().st_size}
    if args.jsonl:
        from notos.data.io import write_rows

        write_rows(str(args.out / "records.jsonl"), pq.read_table(args.out / "records.parquet"))
        sizes["jsonl"] = (args.out / "records.jsonl").stat().st_size
    print(json.dumps({"out": str(args.out), "prompts": done, "bytes": sizes,
                      "seconds": round(time.perf_counter() - started, 1),
                      "planted": {k: len(v) for k, v in truth.items()}}))


if __name__ == "__main__":
    main()
