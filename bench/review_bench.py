#!/usr/bin/env python3
"""Speed and memory of `notos review` at UltraFeedback scale (not a test: figures for a person).

Targets (issue 15): startup <= 5 s, the first page served <= 1 s after start, sort / filter
<= 300 ms, server RSS <= 1 GB. Runs twice on one fresh review folder: "cold" reads the data and
builds the memory-mapped cache, "warm" (every later start on unchanged data) maps it. Each run
starts `notos review DATA --no-browser` as a user does, times
from the process start to the printed URL (startup: imports, the list's keys, index), then the first
/api/records; on a cold start the texts and the audit are still coming in then (`audit_pending`):
the time until they are in is `ready_after_start_s`. Then every sort and filter over HTTP (each
twice: the first may fill a cache), and the server's peak RSS (psutil). One JSON line on stdout.

    .venv/bin/python bench/curate_data.py --out /tmp/uf64k.parquet      # 64,000 prompts x 4
    .venv/bin/python bench/review_bench.py /tmp/uf64k.parquet
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import psutil

QUERIES = {
    "sort chosen rating": "sort=chosen&desc=1",
    "sort critique": "sort=critique&desc=1",
    "sort severity": "sort=severity&desc=1",
    "sort disagreement": "sort=disagreement&desc=1",
    "sort length": "sort=length",
    "filter flagged, sort chosen": "sort=chosen&desc=1&flag=any",
    "filter source": "source=sharegpt",
    "filter model": "model={model}",
    "filter honesty 1-2": "aspect=honesty&low=1&high=2",
    "filter N/A": "na=1",
    "filter not edited": "edited=no",
    "filter flagged + source + rating": "flag=critique_disagrees&source=sharegpt&aspect=helpfulness&low=4&high=5",
    "search (full text)": "q=garden%20river",
    "page 100": "sort=severity&desc=1&page=100",
}


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return psutil.Process(pid).memory_info().rss


def get(url: str, token: str) -> tuple[float, dict]:
    started = time.perf_counter()
    request = urllib.request.Request(url, headers={"X-Notos-Token": token})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    return time.perf_counter() - started, body


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    args = parser.parse_args(argv)
    edits = tempfile.mkdtemp(prefix="review-bench-")  # the review folder, cache included (~650 MB at 64k)
    try:
        print(json.dumps({"cold": one_run(args.data, edits), "warm": one_run(args.data, edits)}))
    finally:
        shutil.rmtree(edits, ignore_errors=True)


def one_run(data: str, edits: str) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "notos.cli", "review", data, "--no-browser", "--edits-dir", edits],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch = psutil.Process(proc.pid)
    peak = 0
    try:
        for line in proc.stdout:
            peak = max(peak, peak_rss(proc.pid))
            found = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
            if found:
                break
        else:
            raise SystemExit(f"the server did not start: {proc.stderr.read()}")
        startup = time.perf_counter() - started
        base, token = f"http://127.0.0.1:{found.group(1)}", found.group(2)
        first, page = get(f"{base}/api/records?sort=position", token)
        _, meta = get(f"{base}/api/meta", token)
        figures = {"prompts": meta["prompts"], "completions": meta["completions"], "startup_s": round(startup, 2),
                   "first_page_s": round(first, 3), "first_page_after_start_s": round(startup + first, 2),
                   "first_page_audit_pending": page.get("audit_pending", False)}
        while meta.get("audit_pending") or meta.get("texts_pending"):  # sorts are timed on the whole data
            time.sleep(0.05)
            peak = max(peak, peak_rss(proc.pid))
            _, meta = get(f"{base}/api/meta", token)
        figures["ready_after_start_s"] = round(time.perf_counter() - started, 2)
        timings = {}
        for name, query in QUERIES.items():
            url = f"{base}/api/records?{query.format(model=meta['models'][0])}"
            cold, body = get(url, token)
            warm, _ = get(url, token)
            timings[name] = {"ms_first": round(cold * 1000, 1), "ms_again": round(warm * 1000, 1), "total": body["total"]}
            peak = max(peak, peak_rss(proc.pid))
        record_s, _ = get(f"{base}/api/record?id={page['rows'][0]['prompt_id']}", token)
        figures.update(queries=timings, record_view_ms=round(record_s * 1000, 1),
                       worst_sort_filter_ms=max(t["ms_first"] for n, t in timings.items() if not n.startswith("search")),
                       rss_peak_mb=round(max(peak, peak_rss(proc.pid)) / 2**20),
                       rss_now_mb=round(watch.memory_info().rss / 2**20))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    return figures


if __name__ == "__main__":
    main()
