#!/usr/bin/env python3
"""The baseline of bench/curate_onepass_bench.py: curation of UltraFeedback the way a user writes it
with `datasets` (one `.map` / `.filter` per step, as the alignment-handbook scripts do), doing the
work of `notos curate all`:

  decontaminate (truthful_qa by source, exact text, any shared word 13-gram with the benchmark) ->
  dedup (datasketch MinHash of the words and word pairs, MinHashLSH at 0.6, first of a cluster
  kept) -> audit (critique vs aspect mean, rating vs rationale words, duplicate responses) ->
  binarize by the mean of the aspect ratings and by the critique score -> compare -> write
  flags / removals / clusters / both pair sets as Parquet.

    .venv/bin/python bench/curate_datasets_script.py /tmp/uf64k/records.parquet /tmp/uf64k/bench.jsonl OUT

Each run gets a fresh `datasets` cache folder (removed at the end): with the shared cache a
second run on the same file finds every `.map` result of the first on disk and recomputes
nothing (`--warm-cache` measures that case).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path

import datasets
from datasketch import MinHash, MinHashLSH

SCHEME = MinHash(num_perm=2).scheme
ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
NEGATIVE = re.compile(r"\b(incorrect\w*|inaccura\w*|wrong\w*|irrelevan\w*|hallucinat\w*|mislead\w*|fabricat\w*|"
                      r"contradict\w*|severe\w*|errors?|mistakes?|flaw(s|ed)?|confus\w*|poor\w*|deviat\w*)\b")
POSITIVE = re.compile(r"\b(accura(te|tely|cy)|correct(ly|ness)?|fully align\w*|comprehensive\w*|excellent\w*|"
                      r"outstanding\w*|thorough\w*|precise\w*|helpful\w*|valuable|insightful|flawless)\b")
NEGATION = re.compile(r"\b(no|not|free of|without|never)\s+(\w+\s+){0,2}")


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", (text or "").lower()).split()


def grams(ws: list[str], n: int) -> set:
    return {" ".join(ws[i:i + n]) for i in range(len(ws) - n + 1)} if len(ws) >= n else {" ".join(ws)}


def main(data: str, bench_path: str, out: str, warm_cache: bool = False) -> None:
    if warm_cache:
        return curate(data, bench_path, Path(out), None)
    cache = tempfile.mkdtemp(prefix="curate_script_cache_")
    try:
        return curate(data, bench_path, Path(out), cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def curate(data: str, bench_path: str, out: Path, cache_dir: str | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ds = datasets.load_dataset("parquet", data_files=data, split="train", cache_dir=cache_dir)
    ds = ds.map(lambda _, i: {"prompt_id": str(i)}, with_indices=True)

    # --- decontaminate
    bench = [t for line in Path(bench_path).read_text().splitlines() for t in json.loads(line)["turns"]]
    bench_exact = {" ".join(words(t)) for t in bench}
    bench_grams = set().union(*(grams(words(t), 13) for t in bench))

    def contamination(row):
        ws = words(row["instruction"])
        if row["source"] == "truthful_qa":
            return {"reason": "source"}
        if " ".join(ws) in bench_exact:
            return {"reason": "exact"}
        return {"reason": "ngram" if grams(ws, 13) & bench_grams else ""}

    ds = ds.map(contamination)
    ds.filter(lambda r: r["reason"] != "").select_columns(["prompt_id", "instruction", "source", "reason"]) \
        .to_parquet(str(out / "removals.parquet"))
    ds = ds.filter(lambda r: r["reason"] == "")

    # --- dedup
    def signature(row):
        ws = words(row["instruction"])
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([s.encode() for s in grams(ws, 1) | grams(ws, 2)])
        return {"minhash": m.hashvalues.tolist(), "n_words": len(ws), "norm": " ".join(ws)}

    ds = ds.map(signature)
    lsh = MinHashLSH(threshold=0.6, num_perm=128)
    seen_exact, removed, clusters = {}, set(), []
    for row in ds.select_columns(["prompt_id", "minhash", "n_words", "norm"]):
        pid = row["prompt_id"]
        if row["norm"] in seen_exact:
            removed.add(pid)
            clusters.append({"prompt_id": pid, "kept": False, "representative": seen_exact[row["norm"]], "reason": "exact"})
            continue
        seen_exact[row["norm"]] = pid
        if row["n_words"] < 10:
            continue
        m = MinHash(num_perm=128, seed=1, hashvalues=row["minhash"], scheme=SCHEME)
        match = [k for k in lsh.query(m)]
        if match:
            removed.add(pid)
            clusters.append({"prompt_id": pid, "kept": False, "representative": min(match, key=int), "reason": "near"})
        else:
            lsh.insert(pid, m)
    datasets.Dataset.from_list(clusters or [{"prompt_id": "", "kept": True, "representative": "", "reason": ""}]) \
        .to_parquet(str(out / "clusters.parquet"))
    ds = ds.filter(lambda r: r["prompt_id"] not in removed).remove_columns(["minhash"])

    # --- audit
    def audit(row):
        flags = []
        seen = {}
        for k, c in enumerate(row["completions"]):
            found, ratings = [], []
            for aspect in ASPECTS:
                a = (c["annotations"] or {}).get(aspect) or {}
                rating = a.get("Rating")
                rationale = (a.get("Rationale For Rating") or a.get("Rationale") or "").lower()
                if rating in (None, ""):
                    found.append("missing_rating")
                    continue
                if rating == "N/A":
                    continue
                r = float(rating)
                ratings.append(r)
                plain = NEGATION.sub(" ", rationale)
                if r >= 4 and len(NEGATIVE.findall(plain)) > len(POSITIVE.findall(plain)):
                    found.append("rating_contradicts_rationale")
                if r <= 2 and len(POSITIVE.findall(plain)) > len(NEGATIVE.findall(plain)):
                    found.append("rating_contradicts_rationale")
            if ratings and c["overall_score"] is not None:
                mean = sum(ratings) / len(ratings)
                gap = (c["overall_score"] - 1) / 9 - (mean - 1) / 4
                if abs(gap) >= 0.5 or (c["overall_score"] >= 9 and mean <= 2):
                    found.append("critique_disagrees")
            key = c["response"].strip().lower()
            if key in seen:
                found.append("duplicate_response")
                flags.append({"completion_index": seen[key], "flags": ["duplicate_response"]})
            seen[key] = k
            if found:
                flags.append({"completion_index": k, "flags": found})
        return {"audit": flags}

    ds = ds.map(audit)
    flagged = [{"prompt_id": r["prompt_id"], **f} for r in ds.select_columns(["prompt_id", "audit"]) for f in r["audit"]]
    datasets.Dataset.from_list(flagged).to_parquet(str(out / "flags.parquet"))

    # --- binarize twice
    def binarize(score):
        def pick(row):
            rng = random.Random(f"0-{row['prompt_id']}")
            scored = []
            for k, c in enumerate(row["completions"]):
                if score == "overall":
                    s = c["overall_score"]
                else:
                    rs = [float(a["Rating"]) for a in (c["annotations"] or {}).values()
                          if a and a.get("Rating") not in (None, "", "N/A")]
                    s = sum(rs) / len(rs) if rs else None
                if s is not None:
                    scored.append((s, k, c["response"]))
            if len(scored) < 2:
                return {"keep": False, "prompt": [], "chosen": [], "rejected": [], "index_chosen": -1, "index_rejected": -1}
            best = max(s for s, _, _ in scored)
            chosen = rng.choice([x for x in scored if x[0] == best])
            lower = [x for x in scored if x[0] < best]
            if not lower:
                return {"keep": False, "prompt": [], "chosen": [], "rejected": [], "index_chosen": -1, "index_rejected": -1}
            rejected = rng.choice(lower)
            return {"keep": True, "prompt": [{"role": "user", "content": row["instruction"]}],
                    "chosen": [{"role": "assistant", "content": chosen[2]}],
                    "rejected": [{"role": "assistant", "content": rejected[2]}],
                    "index_chosen": chosen[1], "index_rejected": rejected[1]}
        pairs = ds.map(pick, remove_columns=[c for c in ds.column_names if c not in ("prompt_id", "source")])
        pairs = pairs.filter(lambda r: r["keep"]).remove_columns(["keep"])
        pairs.to_parquet(str(out / f"pairs_{score}.parquet"))
        return pairs

    by_mean, by_overall = binarize("mean"), binarize("overall")

    # --- compare
    a = dict(zip(by_mean["prompt_id"], by_mean["index_chosen"]))
    b = dict(zip(by_overall["prompt_id"], by_overall["index_chosen"]))
    both = set(a) & set(b)
    differs = sum(a[p] != b[p] for p in both)
    (out / "compare.json").write_text(json.dumps({"n": len(both), "chosen_differs": differs / max(len(both), 1)}))


if __name__ == "__main__":
    main(*sys.argv[1:4], warm_cache="--warm-cache" in sys.argv[4:])
