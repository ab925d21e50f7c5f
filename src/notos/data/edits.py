"""A person's edits to preference data: an append-only log beside the data, and how they apply.

    log = EditsLog(review_dir(Path("runs/uf")))       # runs/uf/review/edits.jsonl
    log.append([edit("p7", "rating_honesty", 2, old=5, completion_index=1)])
    completions, forced, counts = apply_edits(completions, log.path)

The original data is never rewritten. Each edit is one JSON line, written with one `write` under
an exclusive `flock` and fsynced before `append` returns: two browser tabs (or two processes)
never interleave or lose a line, and a kill mid-write can only leave a torn LAST line, which
`read_edits` skips (it never hides the lines before it). A line:

    {"prompt_id": str, "completion_index": int | null, "field": str, "old": ..., "new": ...,
     "time": ISO-8601 UTC, "note": str | null, "origin": "review" | "argilla" | ...}

Fields:
    rating_<aspect>   completion  new rating 1-5, or null for N/A
    chosen, rejected  prompt      completion_index = the completion forced chosen / rejected;
                                  null clears the mark (the latest mark of the prompt wins)
    discard           prompt      new true removes the prompt from binarized data, false restores it
    flag              completion  new "confirmed" or "overruled": the person's verdict on the audit
    note, reviewed    prompt / completion   kept in the log; apply_edits only counts them

The latest edit of a (prompt, completion, field) wins (for chosen / rejected: of a (prompt, field)).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.data.completions import Completions, na_column, rating_column
from notos.errors import DataError

EDITS_FILE = "edits.jsonl"
REVIEW_FOLDER = "review"
MARKS = ("chosen", "rejected")
PROMPT_FIELDS = MARKS + ("discard", "note", "reviewed")
FLAG_VERDICTS = ("confirmed", "overruled")


def review_dir(data: str | Path) -> Path:
    """Where the review of `data` lives: DIR/review for a folder, FILE's folder/<stem>.review for a file."""
    data = Path(data)
    return data / REVIEW_FOLDER if data.is_dir() else data.parent / f"{data.stem}.{REVIEW_FOLDER}"


def edits_path(spec: str | Path) -> Path:
    """The log a `--edits` option names: the JSONL file itself, or a folder holding edits.jsonl."""
    spec = Path(spec)
    if spec.is_dir():
        spec = spec / EDITS_FILE
    if not spec.is_file():
        raise DataError(f"--edits {spec}: no edits log there (notos review writes DIR/review/{EDITS_FILE})")
    return spec


def find_edits(data: str | Path) -> Path | None:
    """The edits log beside `data`, if a review wrote one."""
    path = review_dir(data) / EDITS_FILE
    return path if path.is_file() else None


def edit(prompt_id: str, field: str, new, *, old=None, completion_index: int | None = None, note: str | None = None,
         origin: str = "review") -> dict:
    """One log entry, checked (a bad field or value is a one-line DataError) and stamped with the time."""
    entry = {"prompt_id": str(prompt_id), "completion_index": None if completion_index is None else int(completion_index),
             "field": field, "old": old, "new": new, "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
             "note": note, "origin": origin}
    check_edit(entry)
    return entry


def check_edit(entry: dict, where: str = "edit") -> None:
    field, new, index = entry.get("field"), entry.get("new"), entry.get("completion_index")
    if not isinstance(entry.get("prompt_id"), str) or not isinstance(field, str):
        raise DataError(f"{where}: needs a prompt_id and a field")
    if field.startswith("rating_"):
        if index is None:
            raise DataError(f"{where}: '{field}' needs a completion_index")
        if new is not None and (isinstance(new, bool) or not isinstance(new, (int, float)) or not 1 <= new <= 5):
            raise DataError(f"{where}: '{field}' must be a rating 1-5 or null (N/A), got {new!r}")
    elif field in MARKS:
        if new is not None and (isinstance(new, bool) or not isinstance(new, int)):
            raise DataError(f"{where}: '{field}' names a completion_index (or null to clear), got {new!r}")
    elif field == "discard":
        if not isinstance(new, bool):
            raise DataError(f"{where}: 'discard' is true or false, got {new!r}")
    elif field == "flag":
        if new not in FLAG_VERDICTS or index is None:
            raise DataError(f"{where}: 'flag' needs a completion_index and 'confirmed' or 'overruled', got {new!r}")
    elif field not in ("note", "reviewed"):
        raise DataError(f"{where}: unknown field '{field}' (rating_<aspect>, chosen, rejected, discard, flag, note, reviewed)")


@dataclass
class EditsLog:
    folder: Path

    @property
    def path(self) -> Path:
        return Path(self.folder) / EDITS_FILE

    def append(self, entries: Iterable[dict]) -> int:
        """Write the entries at the end of the log, durably, under an exclusive lock; returns how many."""
        lines = "".join(json.dumps(e, ensure_ascii=False, allow_nan=False) + "\n" for e in entries)
        if not lines:
            return 0
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _repair_torn_end(fd)
            data = lines.encode()
            while data:  # O_APPEND: each write lands at the current end
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock
        return lines.count("\n")

    def read(self) -> list[dict]:
        return read_edits(self.path) if self.path.is_file() else []


def _repair_torn_end(fd: int) -> None:
    """A kill mid-write may leave a last line without its newline: end it, so the next line
    starts clean (the torn line stays unreadable and is skipped)."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")


def read_edits(path: str | Path) -> list[dict]:
    """Every complete, valid line of the log in order; a torn or corrupt line is skipped, never the others."""
    entries = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                entry = json.loads(raw)
                check_edit(entry, f"{path}:{number}")
            except (ValueError, DataError):
                continue  # a line a kill cut short (or a hand edit gone wrong): the others stand
            entries.append(entry)
    return entries


def latest(entries: list[dict]) -> dict:
    """(prompt_id, completion_index, field) -> the latest entry; chosen / rejected keyed per prompt."""
    last = {}
    for entry in entries:
        index = None if entry["field"] in MARKS + ("discard",) else entry.get("completion_index")
        last[(entry["prompt_id"], index, entry["field"])] = entry
    return last


def apply_edits(completions: Completions, edits: str | Path | list[dict]) -> tuple[Completions, dict, dict]:
    """(completions with rating edits and discards applied, forced marks, counts by kind).
    `edits`: the log file, the review folder holding it (DIR/review), or the entries themselves.

    forced: prompt_id -> {"chosen": completion_index | None, "rejected": completion_index | None},
    for prompts a person marked (a mark naming a completion that is not there counts as unmatched).
    counts: ratings, chosen, rejected, discards, flags_confirmed, flags_overruled, notes, reviewed,
    and unmatched (edits whose prompt or completion is not in the data: reported, not dropped silently).
    """
    entries = edits if isinstance(edits, list) else read_edits(edits_path(edits))
    table = completions.table
    ids = table.column("prompt_id").to_pylist()
    indexes = table.column("completion_index").to_pylist()
    row_of = {(p, i): r for r, (p, i) in enumerate(zip(ids, indexes))}
    prompts = set(ids)
    counts = dict.fromkeys(("ratings", "chosen", "rejected", "discards", "flags_confirmed", "flags_overruled",
                            "notes", "reviewed", "unmatched"), 0)
    ratings: dict[str, dict[int, float | None]] = {}
    forced: dict[str, dict] = {}
    discarded = set()
    for (pid, index, field), entry in latest(entries).items():
        target = entry.get("completion_index")
        if pid not in prompts or (target is not None and (pid, target) not in row_of):
            counts["unmatched"] += 1
            continue
        if field.startswith("rating_"):
            aspect = field[len("rating_"):]
            if aspect not in completions.aspects:
                counts["unmatched"] += 1
                continue
            ratings.setdefault(aspect, {})[row_of[(pid, index)]] = entry["new"]
            counts["ratings"] += 1
        elif field in MARKS:
            forced.setdefault(pid, {"chosen": None, "rejected": None})[field] = target
            counts[field] += target is not None
        elif field == "discard":
            if entry["new"]:
                discarded.add(pid)
                counts["discards"] += 1
        elif field == "flag":
            counts[f"flags_{entry['new']}"] += 1
        else:
            counts["notes" if field == "note" else "reviewed"] += 1
    table = _set_ratings(table, ratings)
    if discarded:
        keep = pc.invert(pc.is_in(table.column("prompt_id"), value_set=pa.array(sorted(discarded), pa.string())))
        table = table.filter(keep)
    forced = {pid: marks for pid, marks in forced.items()
              if pid not in discarded and any(v is not None for v in marks.values())}
    return Completions(table, list(completions.aspects)), forced, counts


def _set_ratings(table: pa.Table, ratings: dict) -> pa.Table:
    """New rating values (None: N/A) written into rating_<aspect> and na_<aspect>, column-wise."""
    for aspect, by_row in ratings.items():
        rows = np.fromiter(by_row, np.int64, len(by_row))
        values = np.array([np.nan if v is None else float(v) for v in by_row.values()])
        rating = pc.cast(table.column(rating_column(aspect)), pa.float64()).to_numpy().astype(np.float64)
        na = table.column(na_column(aspect)).to_numpy(zero_copy_only=False).astype(bool)
        rating[rows] = values
        na[rows] = np.isnan(values)
        for name, column in ((rating_column(aspect), pa.array(rating, from_pandas=True)), (na_column(aspect), pa.array(na))):
            table = table.set_column(table.schema.get_field_index(name), name, column)
    return table
