#!/usr/bin/env python3
"""One-pass curation at UltraFeedback's size: `notos curate all` against a plain `datasets.map`
script of the same steps (bench/curate_datasets_script.py), each in its own process, alternated,
in one sitting; wall time and peak RSS from /usr/bin/time, recall scored against the truth file
of bench/uf_full_data.py. Not a test.

    .venv/bin/python bench/uf_full_data.py --n 64000 --out /tmp/uf64k
    .venv/bin/python bench/curate_onepass_bench.py --data /tmp/uf64k --pairs 3
    .venv/bin/python bench/curate_onepass_bench.py --data /tmp/uf64k --pairs 3 --warm-cache   # script cached
    .venv/bin/python bench/curate_onepass_bench.py --data /tmp/uf16k --notos-only   # scaling rows
    .venv/bin/python bench/curate_onepass_bench.py --data /tmp/uf4k --notos-only --screenshot docs/img/curate_report.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def timed(command: list[str]) -> dict:
    """Wall seconds and peak RSS (MB) of one command in its own process."""
    done = subprocess.run(["/usr/bin/time", "-f", "TIMED %e %M", *command], capture_output=True, text=True, cwd=ROOT, check=False)
    line = [x for x in done.stderr.splitlines() if x.startswith("TIMED ")]
    if done.returncode != 0 or not line:
        raise SystemExit(f"{command[:3]} failed:\n{done.stderr[-2000:]}")
    _, seconds, kb = line[-1].split()
    return {"seconds": float(seconds), "peak_rss_mb": round(int(kb) / 1024)}


def run_notos(data: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    return timed([str(Path(PYTHON).parent / "notos"), "curate", "all", str(data / "records.parquet"), "--out", str(out),
                  "-b", str(data / "bench.jsonl")])


def run_script(data: Path, out: Path, warm_cache: bool = False) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    return timed([PYTHON, str(ROOT / "bench" / "curate_datasets_script.py"), str(data / "records.parquet"),
                  str(data / "bench.jsonl"), str(out), *(["--warm-cache"] if warm_cache else [])])


def score(out: Path, truth: dict) -> dict:
    """Recall of what was planted, from the files a tool wrote (both write the same columns)."""
    removals = pq.read_table(out / "removals.parquet")
    removed_text = set(removals.filter(pc.not_equal(removals.column("reason"), "source")).column("prompt_id").to_pylist())
    removed_source = set(removals.filter(pc.equal(removals.column("reason"), "source")).column("prompt_id").to_pylist())
    clusters = pq.read_table(out / "clusters.parquet")
    deduped = set(clusters.filter(pc.invert(clusters.column("kept"))).column("prompt_id").to_pylist()) - {""}
    gone = removed_text | removed_source | deduped
    flags = {}
    for row in pq.read_table(out / "flags.parquet", columns=["prompt_id", "completion_index", "flags"]).to_pylist():
        flags.setdefault((row["prompt_id"], row["completion_index"]), set()).update(row["flags"])

    def recall(items, flag):
        kept = [(str(r), i) for r, i, *_ in items if str(r) not in gone]
        return round(sum(flag in flags.get(k, ()) for k in kept) / max(len(kept), 1), 4)

    pairs = [(str(c), str(o), e) for c, o, e in truth["near_copies"]] + [(str(c), str(o), 0) for c, o in truth["exact_copies"]]
    planted = {r for c, o, _ in pairs for r in (c, o)}
    near = {}
    for edits in (0, 1, 2, 3):
        chosen = [p for p in pairs if p[2] == edits]
        near["exact" if edits == 0 else f"{edits}_edits"] = round(
            sum(c in deduped or o in deduped for c, o, _ in chosen) / max(len(chosen), 1), 4)
    plants = [str(p["record"]) for p in truth["benchmark_plants"].values()]
    return {
        "audit_critique_recall": recall(truth["critique_disagreements"], "critique_disagrees"),
        "audit_contradiction_recall": recall(truth["rationale_contradictions"], "rating_contradicts_rationale"),
        "audit_duplicate_recall": recall([[r, 1] for r in truth["duplicate_prompts"]], "duplicate_response"),
        "decontam_benchmark_recall": round(sum(p in removed_text or p in removed_source for p in plants) / len(plants), 4),
        "truthful_qa_removed": len(removed_source),
        "dedup_recall": near,
        "dedup_near_recall_1_3": round(sum(c in deduped or o in deduped for c, o, e in pairs if e) /
                                       max(sum(1 for p in pairs if p[2]), 1), 4),
        "dedup_precision": round(len(deduped & planted) / max(len(deduped), 1), 4),
        "dedup_removed": len(deduped),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder bench/uf_full_data.py wrote")
    parser.add_argument("--pairs", type=int, default=3, help="notos / script runs, alternated")
    parser.add_argument("--work", type=Path, default=Path("/tmp/curate_onepass_bench"))
    parser.add_argument("--notos-only", action="store_true", help="no baseline: the scaling rows")
    parser.add_argument("--warm-cache", action="store_true",
                        help="let the script reuse the shared datasets cache (its .map results of an earlier run)")
    parser.add_argument("--screenshot", type=Path, help="also render notos's report.html with headless chromium here")
    args = parser.parse_args(argv)
    truth = json.loads((args.data / "truth.json").read_text())
    runs = []
    for i in range(args.pairs):
        runs.append({"tool": "notos", "run": i, **run_notos(args.data, args.work / "notos")})
        print(json.dumps(runs[-1]), flush=True)
        if not args.notos_only:
            runs.append({"tool": "datasets-script", "run": i, **run_script(args.data, args.work / "script", args.warm_cache)})
            print(json.dumps(runs[-1]), flush=True)
    summary = {"data": str(args.data), "parquet_mb": round((args.data / "records.parquet").stat().st_size / 2**20),
               "runs": runs, "recall": {"notos": score(args.work / "notos", truth)}}
    if not args.notos_only:
        summary["recall"]["datasets-script"] = score(args.work / "script", truth)
        mean = {t: sum(r["seconds"] for r in runs if r["tool"] == t) / args.pairs for t in ("notos", "datasets-script")}
        summary["speedup"] = round(mean["datasets-script"] / mean["notos"], 1)
    if args.screenshot:
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={args.screenshot.resolve()}", "--window-size=1280,2600",
                        (args.work / "notos" / "report.html").resolve().as_uri()], check=True, capture_output=True)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
