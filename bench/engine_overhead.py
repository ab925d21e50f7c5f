#!/usr/bin/env python3
"""Engine overhead: rows/s and peak RSS of a 6-step graph of cheap steps, resume on.

Not a test: a script that prints figures (see bench/README.md for the numbers and commands).
  1. A child process writes N UltraFeedback-like rows (`id`, `instruction` of 20-60 words,
     `source`) into a temporary Parquet file (or JSONL with --input-format jsonl).
  2. engine: the 6-step notos pipeline runs into a fresh run folder with resume on (the
     default: every caching step commits each batch to RUN/cache/).
  3. resume (--resume-check): the same pipeline again on the same folder, a no-op resume.
  4. baseline: the same transformations in a plain Python loop, no engine and no store
     (read the file in batches, transform, append to one Parquet file).
  5. check: the run's leaf holds exactly the baseline's rows.
It prints wall time, rows/s, CPU time, per-step seconds from the run's stats, the run
folder's size and the peak RSS of each phase (sampled every 10 ms in a thread). The last
line is `BENCH_JSON={...}` with every figure (--json PATH writes it too).

Peak RSS of the whole process tree: wrap the script in the shared measure.py (it needs
psutil, which .venv has), from the repository root:

    .venv/bin/python ../shared/bench/measure.py --out /tmp/m.json -- \\
        .venv/bin/python bench/engine_overhead.py --rows 100000 --batch-size 1000 --resume-check

Graph shapes (both 6 steps, same output columns):
  linear: load_data >> count_words (per row) >> lowercase (batch) >> filter_rows(n_words >= 25)
          >> count_chars (per row) >> keep_columns
  fanout: load_data >> count_words >> [lowercase, count_chars] >> filter_rows (fan-in, joined
          by row_id) >> keep_columns

Diagnostics: --breakdown wraps engine internals with timers (from here; nothing in src/ is
edited) to show where the time goes per batch: source read, row ids, batch signatures,
Parquet commit, fsync. --no-step-cache gives the three Python steps cache=False (only the
leaf commits); --no-fsync turns the store's fsyncs into no-ops (measurement only).
--profile N prints the top N functions of a cProfile of the event-loop thread (commits run
in other threads and do not show there).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq

import notos
from notos.pipeline import Pipeline, filter_rows, keep_columns, load_data, run, step

MIN_WORDS = 25
OUTPUT_COLUMNS = ["id", "source", "prompt", "n_words", "n_chars"]
SOURCES = ["evol_instruct", "false_qa", "flan_v2_cot", "flan_v2_flan2021", "flan_v2_niv2", "flan_v2_p3",
           "sharegpt", "truthful_qa", "ultrachat"]


# -- the steps (cheap on purpose: the point is what the engine costs around them) ---------------
@step(inputs={"instruction": "str"}, outputs=["n_words"])
def count_words(row):
    return {"n_words": len(row["instruction"].split())}


@step(inputs={"instruction": "str"}, outputs=["prompt"], batch=True)
def lowercase(rows):
    return [{**row, "prompt": row["instruction"].lower()} for row in rows]


@step(inputs=lambda options: {options.get("column", "instruction"): "str"}, outputs=["n_chars"])
def count_chars(row, column="instruction"):
    return {"n_chars": len(row[column])}


def build_pipeline(input_path: str, batch_size: int, shape: str, id_column: str | None, step_cache: bool = True) -> Pipeline:
    """step_cache=False: the three Python steps do not commit (only the leaf does)."""
    src = load_data(input_path, id_column=id_column)
    keep = keep_columns(OUTPUT_COLUMNS)
    if shape == "linear":
        src >> count_words(cache=step_cache) >> lowercase(cache=step_cache) >> filter_rows("n_words", ">=", MIN_WORDS) \
            >> count_chars(column="prompt", cache=step_cache) >> keep
    else:
        words, low, chars = count_words(cache=step_cache), lowercase(cache=step_cache), count_chars(column="instruction", cache=step_cache)
        long_enough = filter_rows("n_words", ">=", MIN_WORDS)
        src >> words >> [low, chars]
        [low, chars] >> long_enough
        long_enough >> keep
    return Pipeline(src, name=f"engine-overhead-{shape}", batch_size=batch_size)


def baseline_transform(rows: list[dict], shape: str) -> list[dict]:
    """The pipeline's transformations as one plain loop (both shapes give the same rows)."""
    out = []
    for row in rows:
        instruction = row["instruction"]
        n_words = len(instruction.split())
        if n_words < MIN_WORDS:
            continue
        prompt = instruction.lower()
        n_chars = len(prompt if shape == "linear" else instruction)
        out.append({"id": row["id"], "source": row["source"], "prompt": prompt, "n_words": n_words, "n_chars": n_chars})
    return out


# -- input ----------------------------------------------------------------------------------------
def make_vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "de", "pa", "qu", "sh", "en", "ar", "ix", "om", "ul", "th"]
    words = set()
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))
        words.add(word.capitalize() if rng.random() < 0.15 else word.upper() if rng.random() < 0.02 else word)
    return sorted(words)


def generate_input(path: Path, n_rows: int, fmt: str, seed: int = 0, chunk: int = 2_000) -> None:
    """Write n_rows UltraFeedback-like prompts, in chunks so generation does not hold them all."""
    rng = random.Random(seed)
    vocab = make_vocabulary(rng)
    punct = ["", "", "", ",", "?", "."]
    writer = None
    fh = open(path, "w", encoding="utf-8") if fmt == "jsonl" else None
    try:
        for start in range(0, n_rows, chunk):
            rows = []
            for i in range(start, min(n_rows, start + chunk)):
                n = rng.randint(20, 60)
                text = " ".join(rng.choice(vocab) + rng.choice(punct) for _ in range(n))
                rows.append({"id": f"uf-{i:07d}", "instruction": text, "source": rng.choice(SOURCES)})
            if fmt == "jsonl":
                fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            else:
                table = pa.Table.from_pylist(rows)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
        if fh is not None:
            fh.close()


def read_input_batches(path: Path, fmt: str, batch_size: int):
    if fmt == "jsonl":
        batch = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                batch.append(json.loads(line))
                if len(batch) == batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch
    else:
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            yield record_batch.to_pylist()


# -- measuring ------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


class RssSampler:
    """Samples this process's RSS every `interval` s in a thread: the peak of one phase.

    (Resetting VmHWM through /proc/self/clear_refs would be exact, but it also lowers the
    ru_maxrss that measure.py reports as peak_proc_rss_mb, so it is not used.)
    """

    def __init__(self, interval: float = 0.01):
        self.interval, self.peak_kb = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        with open("/proc/self/statm") as fh:
            while True:
                fh.seek(0)
                self.peak_kb = max(self.peak_kb, int(fh.read().split()[1]) * page_kb)
                if self._stop.wait(self.interval):
                    return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


@contextmanager
def phase(name: str, results: dict):
    gc.collect()
    rss_before = _status_kb("VmRSS")
    record: dict = {}
    with RssSampler() as sampler:
        started, cpu = time.perf_counter(), os.times()
        yield record
        record["wall_s"] = round(time.perf_counter() - started, 3)
        end_cpu = os.times()
    record["cpu_user_s"] = round(end_cpu.user - cpu.user, 2)  # all threads of the process
    record["cpu_sys_s"] = round(end_cpu.system - cpu.system, 2)
    record["rss_before_mb"] = mb(rss_before)
    record["peak_rss_mb"] = mb(max(sampler.peak_kb, _status_kb("VmRSS") or 0))  # sampled every 10 ms during the phase
    record["process_peak_rss_so_far_mb"] = mb(_status_kb("VmHWM"))
    results[name] = record


def folder_size(path: Path) -> dict:
    """Bytes on disk of a folder, each inode once (data/ hard-links the leaf's cache parts)."""
    seen, apparent, allocated, files = set(), 0, 0, 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            st = os.lstat(os.path.join(root, name))
            files += 1
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return {"files": files, "apparent_mb": round(apparent / 2**20, 2), "allocated_mb": round(allocated / 2**20, 2)}


def filesystem_of(path: Path) -> str:
    best, fstype = "", "?"
    target = str(path.resolve())
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")) and len(parts[1]) >= len(best):
                best, fstype = parts[1], parts[2]
    except OSError:
        pass
    return f"{fstype} ({best})" if best else fstype


def notos_source() -> str:
    """The commit of the notos checkout being measured, '+dirty' if src/ has local changes."""
    root = Path(notos.__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (commit or "?") + ("+dirty" if dirty else "")


class _Proxy:
    """A stand-in for a module inside notos.pipeline.store: some functions timed, the rest as is."""

    def __init__(self, module, **timed):
        self._module, self._timed = module, timed

    def __getattr__(self, name):
        return self._timed.get(name) or getattr(self._module, name)


class Breakdown:
    """Timers wrapped around engine internals from outside (nothing in src/ is edited).

    Totals are summed wall time inside each function, over every thread: commits run in the
    event loop's default thread pool, so they overlap with work on the loop thread.
    """

    def __init__(self):
        self.seconds, self.calls, self.lock = defaultdict(float), defaultdict(int), threading.Lock()

    def _add(self, key, dt):
        with self.lock:
            self.seconds[key] += dt
            self.calls[key] += 1

    def timed(self, key, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._add(key, time.perf_counter() - t0)
        return wrapper

    def timed_iter(self, key, fn):
        def wrapper(*args, **kwargs):
            it = iter(fn(*args, **kwargs))
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    self._add(key, time.perf_counter() - t0)
                    return
                self._add(key, time.perf_counter() - t0)
                yield item
        return wrapper

    def patches(self) -> ExitStack:
        import notos.data.atomic as atomic
        import notos.pipeline.executors.batches as batches
        import notos.pipeline.executors.reading as reading
        import notos.pipeline.planner as planner
        import notos.pipeline.sources as sources
        import notos.pipeline.store as store

        stack = ExitStack()
        p = lambda target, name, new: stack.enter_context(mock.patch.object(target, name, new))  # noqa: E731
        keys = {
            "read": "source: read file -> lists of dicts (in a thread)",
            "ids": "source: assign_row_ids",
            "sig": "source: batch_signature (json.dumps + blake2b per row)",
            "plan": "planner.actions",
            "merge": "fan-in: merge_parents",
            "commit": "store.commit (total; in threads)",
            "table": "  commit: rows_to_table (Table.from_pylist)",
            "write": "  commit: pq.write_table (to .tmp file)",
            "replace": "atomic: os.replace, every call (parts, manifest, stats)",
            "dirsync": "atomic: fsync_dir, every call (after each part, manifest, stats)",
            "fsync": "atomic: os.fsync, every call (parts, dirs, manifest, stats)",
            "load": "store.load (read a committed batch)",
            "mat": "store.materialize (data/ hard links)",
        }
        for key in keys.values():  # report in this order
            self.seconds[key], self.calls[key] = 0.0, 0
        p(sources, "iter_batches", self.timed_iter(keys["read"], sources.iter_batches))
        p(reading, "assign_row_ids", self.timed(keys["ids"], reading.assign_row_ids))
        p(reading, "batch_signature", self.timed(keys["sig"], reading.batch_signature))
        p(planner.Planner, "actions", self.timed(keys["plan"], planner.Planner.actions))
        p(batches, "merge_parents", self.timed(keys["merge"], batches.merge_parents))
        p(store.RunStore, "commit", self.timed(keys["commit"], store.RunStore.commit))
        p(store, "rows_to_table", self.timed(keys["table"], store.rows_to_table))
        p(store, "pq", _Proxy(pq, write_table=self.timed(keys["write"], pq.write_table)))
        p(atomic, "os", _Proxy(os, fsync=self.timed(keys["fsync"], os.fsync), replace=self.timed(keys["replace"], os.replace)))
        p(atomic, "fsync_dir", self.timed(keys["dirsync"], atomic.fsync_dir))
        p(store.RunStore, "load", self.timed(keys["load"], store.RunStore.load))
        p(store.RunStore, "materialize", self.timed(keys["mat"], store.RunStore.materialize))
        return stack

    @staticmethod
    def no_fsync() -> ExitStack:
        """Diagnostic only: the store's fsync calls become no-ops (no durability on power loss)."""
        import notos.data.atomic as atomic

        stack = ExitStack()
        stack.enter_context(mock.patch.object(atomic, "os", _Proxy(os, fsync=lambda fd: None)))
        stack.enter_context(mock.patch.object(atomic, "fsync_dir", lambda path: None))
        return stack

    def report(self) -> dict:
        return {k: {"seconds": round(self.seconds[k], 3), "calls": self.calls[k]} for k in self.seconds if self.calls[k]}


# -- phases ---------------------------------------------------------------------------------------
def run_baseline(input_path: Path, fmt: str, batch_size: int, shape: str, out_path: Path) -> dict:
    read_s = transform_s = write_s = 0.0
    rows_in = rows_out = 0
    writer = None
    schema = pa.schema([("id", pa.string()), ("source", pa.string()), ("prompt", pa.string()), ("n_words", pa.int64()), ("n_chars", pa.int64())])
    batches = read_input_batches(input_path, fmt, batch_size)
    while True:
        t0 = time.perf_counter()
        batch = next(batches, None)
        t1 = time.perf_counter()
        read_s += t1 - t0
        if batch is None:
            break
        out = baseline_transform(batch, shape)
        t2 = time.perf_counter()
        transform_s += t2 - t1
        writer = writer or pq.ParquetWriter(out_path, schema)
        writer.write_table(pa.Table.from_pylist(out, schema=schema))
        write_s += time.perf_counter() - t2
        rows_in += len(batch)
        rows_out += len(out)
    if writer is not None:
        writer.close()
    return {"rows_in": rows_in, "rows_out": rows_out, "read_s": round(read_s, 3), "transform_s": round(transform_s, 3), "write_s": round(write_s, 3)}


def output_digest(files: list[Path]) -> tuple[int, str]:
    """(rows, order-independent digest) of the output columns, read one row group at a time
    so the check adds little to the process's peak RSS."""
    import hashlib

    digests = []
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=1000, columns=OUTPUT_COLUMNS):
            for row in batch.to_pylist():
                digests.append(hashlib.blake2b(json.dumps([row[c] for c in OUTPUT_COLUMNS]).encode(), digest_size=16).digest())
    digests.sort()
    return len(digests), hashlib.blake2b(b"".join(digests), digest_size=16).hexdigest()


def run_engine(pipeline: Pipeline, out_dir: Path, profile: cProfile.Profile | None):
    if profile is not None:
        profile.enable()
    try:
        return run(pipeline, out_dir, progress=False)
    finally:
        if profile is not None:
            profile.disable()


def print_stats(stats: dict) -> None:
    print(f"    {'step':<14}{'rows_in':>9}{'rows_out':>9}{'cached':>8}{'batches':>8}{'seconds':>9}{'rows/s':>12}")
    for name, s in stats.items():
        rate = f"{s['rows_per_s']:,.0f}" if s.get("rows_per_s") else "-"
        print(f"    {name:<14}{s['rows_in']:>9}{s['rows_out']:>9}{s['rows_cached']:>8}{s['batches']:>8}{s['seconds']:>9.3f}{rate:>12}")


def print_breakdown(report: dict, wall: float) -> None:
    for key, v in report.items():
        per = v["seconds"] / v["calls"] * 1000 if v["calls"] else 0
        print(f"    {key:<66}{v['seconds']:>8.3f} s {100 * v['seconds'] / wall:>5.1f}% of wall  {v['calls']:>6} calls  {per:>7.3f} ms/call")


def engine_phase(name: str, a, input_path: Path, out_dir: Path, phases: dict, profile: cProfile.Profile | None = None):
    breakdown = Breakdown() if a.breakdown else None
    pipeline = build_pipeline(str(input_path), a.batch_size, a.shape, a.id_column or None, not a.no_step_cache)
    with phase(name, phases), (breakdown.patches() if breakdown else ExitStack()), (Breakdown.no_fsync() if a.no_fsync else ExitStack()):
        result = run_engine(pipeline, out_dir, profile)
    rec = phases[name]
    rec.update(run_seconds=round(result.seconds, 3), rows_out=result.rows, stats=result.stats, run_folder=folder_size(out_dir))
    rec["rows_per_s"] = round(a.rows / rec["wall_s"], 1)
    if breakdown:
        rec["breakdown"] = breakdown.report()
    return result, rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000, help="input rows (default 100000)")
    ap.add_argument("--batch-size", type=int, default=1000, help="pipeline batch size (default 1000; also try 100)")
    ap.add_argument("--out", type=Path, default=None, help="run folder (must be new or empty; kept). Default: a temporary folder, removed at the end")
    ap.add_argument("--resume-check", action="store_true", help="run the pipeline a second time on the same folder and time the no-op resume")
    ap.add_argument("--shape", choices=["linear", "fanout"], default="linear", help="graph shape, both 6 steps (default linear)")
    ap.add_argument("--input-format", choices=["parquet", "jsonl"], default="parquet", help="format of the generated input (default parquet)")
    ap.add_argument("--id-column", default="id", help="id column given to load_data (default 'id'; '' to derive row ids from position + content)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the plain-loop baseline and the output check")
    ap.add_argument("--breakdown", action="store_true", help="time engine internals (source read, row ids, signatures, commit, fsync)")
    ap.add_argument("--no-step-cache", action="store_true", help="diagnostic: the three Python steps get cache=False, so only the leaf commits")
    ap.add_argument("--no-fsync", action="store_true", help="diagnostic: patch the store's fsync calls to no-ops, to see what they cost")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N functions of a cProfile of the event-loop thread")
    ap.add_argument("--tmp", type=Path, default=None, help="where the temporary input and run folders go (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary input file and run folder")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--generate-only", type=Path, default=None, metavar="PATH", help=argparse.SUPPRESS)  # the child that writes the input
    a = ap.parse_args(argv)
    if a.generate_only:
        generate_input(a.generate_only, a.rows, a.input_format)
        return 0
    script_started = time.perf_counter()

    if a.out is not None and a.out.exists() and (not a.out.is_dir() or any(a.out.iterdir())):
        ap.error(f"--out {a.out}: exists and is not empty; the benchmark needs a fresh run folder")
    work = Path(tempfile.mkdtemp(prefix="notos-bench-", dir=a.tmp))
    input_path = work / f"prompts.{a.input_format}"
    out_dir = a.out if a.out is not None else work / "run"
    results: dict = {
        "notos_version": notos.__version__, "notos_commit": notos_source(), "python": sys.version.split()[0], "pyarrow": pa.__version__, "cpus": os.cpu_count(),
        "rows": a.rows, "batch_size": a.batch_size, "shape": a.shape, "input_format": a.input_format, "id_column": a.id_column or None,
        "step_cache": not a.no_step_cache, "fsync": not a.no_fsync, "run_folder": str(out_dir),
        "filesystem": filesystem_of(out_dir if out_dir.exists() else out_dir.parent), "phases": {},
    }
    phases = results["phases"]
    print(f"notos {notos.__version__} ({results['notos_commit']}), python {results['python']}, pyarrow {pa.__version__}, {os.cpu_count()} CPUs; "
          f"rows={a.rows} batch_size={a.batch_size} shape={a.shape} input={a.input_format} id_column={a.id_column or '(derived)'}"
          + (" [diagnostic: intermediate steps cache=False]" if a.no_step_cache else "") + (" [diagnostic: fsync off]" if a.no_fsync else ""))
    print(f"run folder: {out_dir} on {results['filesystem']}")

    try:
        # A child process writes the input, so generating it leaves nothing in this process's RSS.
        with phase("generate", phases) as rec:
            subprocess.run([sys.executable, __file__, "--generate-only", str(input_path), "--rows", str(a.rows),
                            "--input-format", a.input_format], check=True)
            rec["input_mb"] = round(input_path.stat().st_size / 2**20, 2)
        print(f"generate (child process): {a.rows} rows -> {input_path.name} ({phases['generate']['input_mb']} MB) in {phases['generate']['wall_s']:.2f} s")

        profile = cProfile.Profile() if a.profile else None
        result, e = engine_phase("engine", a, input_path, out_dir, phases, profile)
        print(f"engine (fresh run, resume on): {e['wall_s']:.2f} s, {e['rows_per_s']:,.0f} rows/s, rows out {result.rows}, "
              f"CPU {e['cpu_user_s']} user + {e['cpu_sys_s']} sys s, peak RSS {e['peak_rss_mb']} MB (RSS before {e['rss_before_mb']} MB)")
        print(f"  run folder: {e['run_folder']['files']} files, {e['run_folder']['apparent_mb']} MB ({e['run_folder']['allocated_mb']} MB allocated)")
        print("  per-step stats (seconds = compute only, commits not included):")
        print_stats(result.stats)
        if "breakdown" in e:
            print("  breakdown (wall time inside each function, summed over threads; indented lines are inside store.commit):")
            print_breakdown(e["breakdown"], e["wall_s"])
        if profile:
            buf = io.StringIO()
            pstats.Stats(profile, stream=buf).sort_stats("tottime").print_stats(a.profile)
            print("  cProfile of the event-loop thread, by tottime:")
            print("\n".join("    " + line for line in buf.getvalue().splitlines() if line.strip()))

        if a.resume_check:
            again, r = engine_phase("resume", a, input_path, out_dir, phases)
            handled = {k: v["batches"] for k, v in again.stats.items() if v["batches"]}
            print(f"resume (same pipeline, same folder): {r['wall_s']:.2f} s, {r['rows_per_s']:,.0f} input rows/s, rows out {again.rows}, "
                  f"CPU {r['cpu_user_s']} user + {r['cpu_sys_s']} sys s, peak RSS {r['peak_rss_mb']} MB (RSS before {r['rss_before_mb']} MB); "
                  f"batches handled per step: {handled or 'none'}")
            if again.rows != result.rows:
                print(f"  WARNING: the resume gave {again.rows} rows, the fresh run {result.rows}")
            if "breakdown" in r:
                print_breakdown(r["breakdown"], r["wall_s"])

        if not a.no_baseline:
            with phase("baseline", phases) as rec:
                rec.update(run_baseline(input_path, a.input_format, a.batch_size, a.shape, work / "baseline.parquet"))
            b = phases["baseline"]
            b["rows_per_s"] = round(b["rows_in"] / b["wall_s"], 1)
            print(f"baseline (plain loop: read {a.batch_size}-row batches -> transform -> one Parquet file): {b['wall_s']:.2f} s, "
                  f"{b['rows_per_s']:,.0f} rows/s, {b['rows_out']} rows out (read {b['read_s']:.2f} s, transform {b['transform_s']:.2f} s, "
                  f"write {b['write_s']:.2f} s), CPU {b['cpu_user_s']} user + {b['cpu_sys_s']} sys s, peak RSS {b['peak_rss_mb']} MB")
            results["overhead_ratio"] = round(e["wall_s"] / b["wall_s"], 1)
            print(f"engine / baseline wall time: {results['overhead_ratio']}x")
            engine_rows = output_digest(sorted((out_dir / "data" / "keep_columns").glob("part-*.parquet")))
            results["same_rows_as_baseline"] = engine_rows == output_digest([work / "baseline.parquet"])
            print(f"check: the run's data/keep_columns holds the baseline's rows ({engine_rows[0]}, any order): {results['same_rows_as_baseline']}")
    finally:
        cleanup_started = time.perf_counter()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        results["cleanup_s"] = round(time.perf_counter() - cleanup_started, 3)

    results["script_wall_s"] = round(time.perf_counter() - script_started, 3)
    print(f"script: {results['script_wall_s']:.2f} s after imports, of which removing the temporary folder {results['cleanup_s']:.2f} s"
          + (f"; kept {work}" if a.keep else ""))
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    print("BENCH_JSON=" + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
