"""The run folder: committed batches, the resolved config, stats and a manifest.

    RUN/manifest.json        what ran: steps, fingerprints (and their scheme), status, leaves
    RUN/pipeline.yaml        the resolved pipeline (secrets redacted)
    RUN/stats.json           per-step rows in/out/failed, seconds, tokens (`_totals`: over resumes)
    RUN/data/LEAF/*.parquet  each leaf's rows after the last complete run
    RUN/cache/STEP-FP/       committed batches of each caching step, by fingerprint

A batch is committed atomically (write, fsync, rename) under a name made of its index and a
signature of its row ids, so a rerun skips exactly what is committed, a changed input file
recomputes exactly the batches whose rows changed, and `kill -9` at any moment loses at most
the batches in flight. The cache is append-only; `data/` is swapped in whole at the end.

The run folder may also be a URI (`s3://bucket/prefix`): storage.py says how each write is made
atomic there (a part, then its commit marker), and `data/LEAF` is published with its file list
(`_notos.json`) written last.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from notos.data.atomic import recover_folder, replace_folder
from notos.errors import NotosError
from notos.pipeline.storage import files_for, publish_leaf
from notos.pipeline.tables import on_arrow_thread, rows_to_table, unify_part_schemas
from notos.version import __version__

PART = re.compile(r"^part-(\d{6,})-([0-9a-f]{12})\.(parquet|empty)$")
# Beside a part that holds failed rows: `--retry-failed` finds them without reading every part.
FAILED = re.compile(r"^part-(\d{6,})-([0-9a-f]{12})\.failed$")
# Whole key names (or their last _part): `max_new_tokens` is a setting, `hf_token` a secret.
SECRET_KEY = re.compile(r"(^|_)(api[_-]?key|key|token|secret|password|authorization|credentials?)$", re.I)


def batch_signature(rows: list[dict]) -> str:
    """Identity of a batch at its segment root: a hash of its rows (ids and content), so an
    edited input row invalidates exactly its batch."""
    h = hashlib.blake2b(digest_size=6)
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False).encode())
        h.update(b"\x00")
    return h.hexdigest()


class Committed:
    """The batches committed for one step version, held for a whole run in little memory: one
    signature per batch index (interned, so every step of a segment shares it), and the rare
    second signature of an index (its input rows changed) beside them. 64k prompts at batch 64
    over 20 caching steps: 2.3 MB, where a set per index took 6.6 MB."""

    __slots__ = ("first", "more")

    def __init__(self):
        self.first: dict[int, str] = {}
        self.more: set[tuple[int, str]] = set()

    def add(self, index: int, sig: str) -> None:
        if self.first.setdefault(index, sys.intern(sig)) != sig:
            self.more.add((index, sig))

    def has(self, index: int, sig: str) -> bool:
        return self.first.get(index) == sig or (index, sig) in self.more

    def as_dict(self) -> dict[int, set[str]]:
        """Batch index -> the signatures committed there."""
        out = {index: {sig} for index, sig in self.first.items()}
        for index, sig in self.more:
            out[index].add(sig)
        return out

    def __len__(self) -> int:  # batch indices with a commit
        return len(self.first)


def _parquet_part(rows: list[dict], step: str, index: int) -> bytes:
    """A batch's rows as the bytes of its Parquet part (failing, in place, the rows whose values
    cannot be stored: tables.rows_to_table)."""
    try:
        table = rows_to_table(rows, step)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise NotosError(f"step '{step}': cannot store batch {index}: {str(exc).splitlines()[0]}") from None
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def redact(value):
    """Replace anything that looks like a secret in a config with '***'."""
    if isinstance(value, dict):
        return {k: ("***" if SECRET_KEY.search(str(k)) and v not in (None, "") and not str(k).endswith("_env") else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class RunStore:
    def __init__(self, root: str | Path):
        self.files = files_for(root)
        self.root = self.files.root  # a Path, or the URI of a run folder on an object store
        self._committed: dict[str, Committed] = {}
        self._failed: dict[str, set[tuple[int, str]]] = {}
        self._manifest: dict = {}

    # -- the run's life: open, then complete or fail ----------------------------------
    def open(self, plan: dict, pipeline_yaml: str) -> None:
        """Start a run here: check the folder, undo what a killed run left half-done, write the
        manifest (status "running") and the resolved config.

        `plan` says what runs: `pipeline` (its name), `batch_size`, `limit`,
        `fingerprint_scheme`, `steps` (name -> kind, fingerprint, parents) and `leaves` (names).
        """
        self._check_folder()
        previous = self.manifest()
        steps = {name: {**entry, "cache": self._step_rel(name, entry["fingerprint"])}
                 for name, entry in plan.get("steps", {}).items()}
        self._manifest = {
            "notos_version": __version__, "pipeline": plan.get("pipeline"), "batch_size": plan.get("batch_size"),
            "limit": plan.get("limit"), "fingerprint_scheme": plan.get("fingerprint_scheme"),
            "status": "running", "started_at": now(), "steps": steps,
            # Who runs it: `notos show` tells a running run from one whose process is gone.
            "process": {"pid": os.getpid(), "host": socket.gethostname(), "started": process_start(os.getpid())},
            "leaves": {leaf: f"data/{leaf}" for leaf in plan.get("leaves", ())},
            # The last 20 complete runs in this folder: what each produced, with which limit
            # (a failed run has no `last_run`, and no longer wipes the history).
            "history": (previous.get("history", []) + ([previous["last_run"]] if previous.get("last_run") else []))[-20:],
        }
        self.write_manifest(self._manifest)
        self.files.write_bytes("pipeline.yaml", pipeline_yaml.encode())

    def _check_folder(self) -> None:
        """A new or empty folder, or a run folder; made ready, and what a killed run left undone."""
        if self.files.remote:
            if self.files.listing("") and not self.files.exists("manifest.json"):
                raise NotosError(f"--out {self.root}: not empty and not a notos run folder; choose another")
            self.files.makedirs("cache")
            return
        if self.root.exists() and not self.root.is_dir():
            raise NotosError(f"--out {self.root}: exists and is not a folder")
        if self.root.is_dir() and any(self.root.iterdir()) and not (self.root / "manifest.json").exists():
            raise NotosError(f"--out {self.root}: folder is not empty and is not a notos run folder; choose another")
        (self.root / "cache").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        self._recover()

    def complete(self, rows: dict[str, int], seconds: float, stats: dict) -> None:
        """The run finished: record its rows per leaf (data/ is already swapped in)."""
        finished = now()
        self._manifest.update(status="complete", finished_at=finished, seconds=round(seconds, 3), rows=rows)
        self._manifest["last_run"] = {"finished_at": finished, "rows": rows, "limit": self._manifest.get("limit")}
        self.write_stats(stats)
        self.write_manifest(self._manifest)

    def fail(self, error: BaseException, stats: dict) -> None:
        """The run stopped early; what it committed stays for the next run to resume from."""
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        self._manifest.update(status=status, error=str(error)[:500], finished_at=now())
        self.write_stats(stats)
        self.write_manifest(self._manifest)

    def _recover(self) -> None:
        """Undo what a killed run left half-done: temp files, a half-swapped data folder."""
        for tmp in self.root.rglob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)
        data = self.root / "data"
        for new in data.glob(".*.new"):
            shutil.rmtree(new, ignore_errors=True)
        for old in data.glob(".*.old"):
            recover_folder(data / old.name[1:-4])

    def manifest(self) -> dict:
        try:
            data = self.files.read_bytes("manifest.json")
            return json.loads(data) if data is not None else {}
        except (OSError, json.JSONDecodeError):
            raise NotosError(f"{self.root}/manifest.json: unreadable run manifest; move the folder aside or choose "
                             "another --out") from None

    def write_manifest(self, manifest: dict) -> None:
        self.files.write_bytes("manifest.json", json.dumps(manifest, indent=2, default=str).encode())

    # -- batches ----------------------------------------------------------------------
    def step_dir(self, step: str, fingerprint: str) -> Path:
        """A step's cache folder on a local disk (the cache migration renames these)."""
        return self.root / self._step_rel(step, fingerprint)

    def _step_rel(self, step: str, fingerprint: str) -> str:
        return f"cache/{step}-{fingerprint[:12]}"

    def committed(self, step: str, fingerprint: str) -> Committed:
        """The batches (index, signature) committed for this step version (scanned once)."""
        key = f"{step}-{fingerprint}"
        if key not in self._committed:
            found = Committed()
            failed: set[tuple[int, str]] = set()
            for name in self.files.names(self._step_rel(step, fingerprint)):
                m = PART.match(name)
                if m:
                    found.add(int(m.group(1)), m.group(2))
                elif f := FAILED.match(name):
                    failed.add((int(f.group(1)), sys.intern(f.group(2))))
            self._committed[key] = found
            self._failed[key] = failed
        return self._committed[key]

    def failures(self, step: str, fingerprint: str) -> set[tuple[int, str]]:
        """The batches (index, signature) of this step version that hold failed rows."""
        self.committed(step, fingerprint)
        return set(self._failed[f"{step}-{fingerprint}"])

    def assume_listed(self, step: str, fingerprint: str, failures: set[tuple[int, str]]) -> None:
        """Take a step folder's listing as given instead of listing it (a cluster worker: the
        driver listed it once; the worker only adds parts, and needs only `failures`)."""
        key = f"{step}-{fingerprint}"
        self._committed.setdefault(key, Committed())
        self._failed.setdefault(key, set(failures))

    def has(self, step: str, fingerprint: str, index: int, sig: str) -> bool:
        return self.committed(step, fingerprint).has(index, sig)

    def has_failures(self, step: str, fingerprint: str, index: int, sig: str) -> bool:
        self.committed(step, fingerprint)
        return (index, sig) in self._failed[f"{step}-{fingerprint}"]

    def _part(self, step, fingerprint, index, sig, suffix) -> str:
        return f"{self._step_rel(step, fingerprint)}/part-{index:06d}-{sig}.{suffix}"

    def commit(self, step: str, fingerprint: str, index: int, sig: str, rows: list[dict]) -> None:
        if not self.files.remote:  # object stores have no folders to make
            self.files.makedirs(self._step_rel(step, fingerprint))
        self.committed(step, fingerprint)
        failed_marks = self._failed[f"{step}-{fingerprint}"]
        marker = self._part(step, fingerprint, index, sig, "failed")
        # The rows become Parquet bytes on the Arrow thread (tables.on_arrow_thread); this thread
        # writes them. Rows whose values cannot be stored are failed there, in place.
        data = on_arrow_thread(_parquet_part, rows, step, index) if rows else None
        has_failed = any(r.get("_error") for r in rows)
        if has_failed:
            # The marker goes first: a crash between the two leaves a marker without its part
            # (harmless: the part is simply not committed), never failed rows without a marker.
            self.files.write_bytes(marker, b"")
            failed_marks.add((index, sig))
        if data is not None:
            self.files.commit_bytes(self._part(step, fingerprint, index, sig, "parquet"), data)
        else:
            self.files.commit_bytes(self._part(step, fingerprint, index, sig, "empty"), b"")
        if not has_failed and (index, sig) in failed_marks:  # a retried batch that now succeeds
            self.files.delete(marker)
            failed_marks.discard((index, sig))
        self.committed(step, fingerprint).add(index, sig)

    def load(self, step: str, fingerprint: str, index: int, sig: str) -> list[dict]:
        # The bytes are fetched here (a slow S3 GET must not hold up other steps' commits);
        # only the decoding, which allocates through Arrow, goes to the Arrow thread.
        data = self.files.read_bytes(self._part(step, fingerprint, index, sig, "parquet"))
        return [] if data is None else on_arrow_thread(_decode_rows, data)

    # -- global steps -------------------------------------------------------------------
    def global_parts(self, step: str, fingerprint: str) -> list[tuple[int, str]] | None:
        marker = self.files.read_bytes(f"{self._step_rel(step, fingerprint)}/_complete.json")
        return None if marker is None else [tuple(p) for p in json.loads(marker)["parts"]]

    def global_failed(self, step: str, fingerprint: str) -> int:
        """Failed rows among a complete global step's output (passed through from upstream)."""
        marker = self.files.read_bytes(f"{self._step_rel(step, fingerprint)}/_complete.json")
        return json.loads(marker).get("failed", 0) if marker is not None else 0

    def mark_global_complete(self, step: str, fingerprint: str, parts: list[tuple[int, str]], failed: int = 0) -> None:
        folder = self._step_rel(step, fingerprint)
        self.files.makedirs(folder)
        self.files.write_bytes(f"{folder}/_complete.json", json.dumps({"parts": parts, "failed": failed}).encode())

    # -- results ------------------------------------------------------------------------
    def materialize(self, leaf: str, fingerprint: str, parts: list[tuple[int, str]], columns: dict | None = None) -> int:
        """Swap data/LEAF for the parts of this run, in batch order (hard links, no copies)."""
        if self.files.remote:
            return publish_leaf(self.files, leaf, fingerprint, [self._part(leaf, fingerprint, i, s, "parquet")
                                                                for i, s in sorted(parts)])
        data = self.root / "data"
        new = data / f".{leaf}.new"
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir()
        try:
            rows = self._fill(new, leaf, fingerprint, parts, columns)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)  # never leave a half-made .LEAF.new behind
            raise
        replace_folder(new, data / leaf, fsync_files=False)  # hard links to parts fsynced at commit
        return rows

    def _fill(self, new: Path, leaf: str, fingerprint: str, parts: list[tuple[int, str]], columns: dict | None = None) -> int:
        rows = 0
        for n, (index, sig) in enumerate(sorted(parts)):
            src = self.files.path(self._part(leaf, fingerprint, index, sig, "parquet"))
            if not src.exists():
                continue
            dst = new / f"part-{n:06d}.parquet"
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
            rows += pq.ParquetFile(dst).metadata.num_rows
        if not any(new.glob("part-*.parquet")) and columns:
            # Every row was filtered out: the leaf keeps its columns (typed as declared) all the same.
            pq.write_table(empty_table(columns), new / "part-000000.parquet")
        unify_part_schemas(sorted(new.glob("part-*.parquet")))
        (new / "_notos.json").write_text(json.dumps({"step": leaf, "fingerprint": fingerprint, "rows": rows}))
        return rows

    def write_stats(self, stats: dict) -> None:
        """This invocation's numbers per step (the top-level keys), and under `_totals` the
        sums over every invocation in this folder (resumes included; `invocations` counts them)."""
        totals = {}
        try:
            totals = json.loads(self.files.read_bytes("stats.json") or b"{}").get("_totals") or {}
        except (OSError, ValueError, AttributeError):
            pass
        if not isinstance(totals, dict):
            totals = {}
        for name, numbers in stats.items():
            kept = totals.get(name) if isinstance(totals.get(name), dict) else {}
            summed = {k: round(kept.get(k, 0) + v, 3) if isinstance(v, float) else kept.get(k, 0) + v
                      for k, v in numbers.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "rows_per_s"}
            summed["invocations"] = kept.get("invocations", 0) + 1
            totals[name] = summed
        self.files.write_bytes("stats.json", json.dumps({**stats, "_totals": totals}, indent=2).encode())


def process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot, from /proc), to tell it from a later
    process that got the same pid; None where /proc is not there."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


DECLARED_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def empty_table(columns: dict[str, str]) -> pa.Table:
    """No rows, the leaf's columns: declared types where a step declared one, null elsewhere."""
    names = {"row_id": "str", **columns, "_error": "str"}
    return pa.table({n: pa.array([], DECLARED_TYPES.get(str(t).rstrip("?"), pa.null())) for n, t in names.items()})


def _decode_rows(data: bytes) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data)).to_pylist()
