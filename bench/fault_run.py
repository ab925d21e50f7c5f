"""The shipped `ultrafeedback` recipe on 1,000 plain prompts against a hostile loopback server,
then `--retry-failed`, then `--retry-unparsed`: rows fully rated, rows failed with a reason, rows
whose judgment could not be read, rows silently wrong, and requests re-issued (issue 13).

    .venv/bin/python bench/fault_run.py [--n 1000] [--seed 7]

Faults ride in the prompt text (tests/fake_llm_server.py): 15% `[500x2]` (two HTTP 500s, then
an answer), 5% `[hangx1]` (the first request never answers: the client times out), 3%
`[badjsonx1]` (a 200 whose body is cut), 2% `[429x1:ra=1]` (Retry-After), 2% `[500]` (always
500: these rows must end failed, with the reason), 5% `[garble]` (the greedy judge writes
"Rating: N/A?" for every answer: unread, until asked again sampled). The rest are clean.
The loopback judge rates every answer 3 (no digit marker in the prompts), so a rating other than
3 is silently wrong.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fake_llm_server import FakeLLMServer  # noqa: E402

FAULTS = [("[500x2]", 0.15), ("[hangx1]", 0.05), ("[badjsonx1]", 0.03), ("[429x1:ra=1]", 0.02), ("[500]", 0.02),
          ("[garble]", 0.05)]


def prompts(n: int, seed: int) -> tuple[list[dict], set[str]]:
    draw = random.Random(seed)
    rows, doomed = [], set()
    for i in range(n):
        marker, roll, edge = "", draw.random(), 0.0
        for fault, share in FAULTS:
            edge += share
            if roll < edge:
                marker = fault
                break
        rows.append({"id": f"p{i:05d}", "instruction": f"Explain topic {i} in two sentences. {marker}".strip()})
        if marker == "[500]":
            doomed.add(f"p{i:05d}")
    return rows, doomed


def notos(*args) -> tuple[int, float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "notos.cli", *map(str, args)], capture_output=True, text=True)
    return done.returncode, time.perf_counter() - started, done.stderr.strip().splitlines()[-1:] or [""]


def tally(out: Path, doomed: set[str]) -> dict:
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "data" / "records").to_pylist()
    ok = failed = wrong = unread = 0
    reasons = 0
    for row in rows:
        if row.get("_error"):
            failed += 1
            reasons += bool(str(row["_error"]).strip())
            continue
        ratings = [c["annotations"][a]["Rating"] for c in row["completions"] for a in c["annotations"]]
        if any(r not in (None, "", "3") for r in ratings) or len(row["completions"]) != 3:
            wrong += 1  # a rating the judge never gave, or answers lost: silently wrong
        elif all(r == "3" for r in ratings):
            ok += 1
        else:
            unread += 1  # a rating missing: the judge's reply could not be read (counted in stats.json)
    return {"rows": len(rows), "unique_row_ids": len({r["row_id"] for r in rows}), "fully_rated": ok, "failed_with_reason": reasons,
            "failed_without_reason": failed - reasons, "judgment_unread": unread, "silently_wrong": wrong,
            "doomed_failed": sum(1 for r in rows if r["row_id"] in doomed and r.get("_error"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    a = parser.parse_args()
    rows, doomed = prompts(a.n, a.seed)
    with tempfile.TemporaryDirectory() as tmp, FakeLLMServer(latency=0.02) as server:
        data, out = Path(tmp) / "prompts.jsonl", Path(tmp) / "run"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        args = ["run", "ultrafeedback", "--input", data, "--llm-base-url", server.base_url, "--out", out,
                "--set", "critique.enabled=false", "--llm-timeout", "1", "--llm-max-retries", "3", "--no-progress"]
        code1, s1, err1 = notos(*args)
        first = {**tally(out, doomed), "exit": code1, "last_stderr_line": err1[0][:200], "seconds": round(s1, 1),
                 "requests": len(server.requests)}
        code2, s2, err2 = notos(*args, "--retry-failed")
        second = {**tally(out, doomed), "exit": code2, "last_stderr_line": err2[0][:200], "seconds": round(s2, 1),
                  "requests": len(server.requests)}
        code3, s3, err3 = notos(*args, "--retry-unparsed")
        third = {**tally(out, doomed), "exit": code3, "last_stderr_line": err3[0][:200], "seconds": round(s3, 1),
                 "requests": len(server.requests)}
    logical = a.n * 3 + a.n * 4  # 3 answers, 4 aspect ratings per row
    print(json.dumps({"n": a.n, "doomed_rows": len(doomed), "logical_requests": logical, "first_run": first,
                      "after_retry_failed": second, "after_retry_unparsed": third}, indent=2))


if __name__ == "__main__":
    main()
