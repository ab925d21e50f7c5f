"""A memory-mapped copy of the completions table (and its audit) beside the review, so a restart
takes a second and the text lives in the page cache, not in the server's own memory.

    table, flags = cached(files, folder, build)     # build() -> (table, flags) on a miss

REVIEW/cache/ holds completions.arrow and flags.arrow (Arrow IPC, uncompressed: mapped, not
read) and key.json: the data files' paths, sizes and mtimes, the reader's options and the notos
version. Any difference rebuilds it; a half-written cache is never used (each file is written
aside and renamed, key.json last). The cache is a copy of the data: delete the folder any time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from pyarrow import ipc

from notos.data.atomic import atomic_file, atomic_write_bytes
from notos.errors import DataError, NotosError
from notos.version import __version__

CHUNK_ROWS = 65_536
IN_PROCESS_BYTES = 32 << 20  # smaller data is read in the server itself: a child costs ~1 s of imports


def cache_key(files: list[Path], options: dict) -> dict:
    stats = []
    for file in files:
        info = Path(file).stat()
        stats.append([str(Path(file).resolve()), info.st_size, info.st_mtime_ns])
    return {"files": stats, "options": options, "version": __version__}


def cached(files: list[Path], folder: Path, options: dict, flags_of: Callable[[pa.Table], pa.Table]):
    """(completions table, audit flags), memory-mapped from `folder`. On a miss a child process
    reads the data and writes the table (the reader's peak memory is the child's, handed back to
    the system when it exits); the audit then runs on the mapped copy."""
    folder = Path(folder)
    key = cache_key(files, options)
    if _valid(folder, key):
        try:
            return _map(folder / "completions.arrow"), _map(folder / "flags.arrow")
        except (OSError, pa.ArrowInvalid):
            pass  # a damaged cache: rebuild it below
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    if sum(size for _, size, _ in key["files"]) < IN_PROCESS_BYTES:
        _write(_read(options["read_from"], options["format"]), folder / "completions.arrow")
    else:
        _read_in_child(options, folder / "completions.arrow")
    table = _map(folder / "completions.arrow")
    flags = flags_of(table)
    _write(flags, folder / "flags.arrow")
    atomic_write_bytes(folder / "key.json", json.dumps(key).encode())  # last: the cache is whole
    return table, flags


def _read_in_child(options: dict, out: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "notos.review.cache", options["read_from"], options["format"], str(out)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr.strip() or f"exit code {done.returncode}").splitlines()
        raise DataError(lines[-1].removeprefix("error: "))


def _read(read_from: str, format: str) -> pa.Table:
    from notos.review.load import Source, read_source

    return read_source(Source(None, "mean", 0, Path(read_from), {}, Path(read_from), format)).completions.table


def _child(read_from: str, format: str, out: str) -> int:
    """The child: read the completions (`notos.review.load`) and write them as Arrow IPC."""
    try:
        _write(_read(read_from, format), Path(out))
    except NotosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _valid(folder: Path, key: dict) -> bool:
    try:
        return json.loads((folder / "key.json").read_text()) == json.loads(json.dumps(key))
    except (OSError, ValueError):
        return False


def _write(table: pa.Table, path: Path) -> None:
    with atomic_file(path) as tmp, ipc.new_file(str(tmp), table.schema) as writer:
        writer.write_table(table, max_chunksize=CHUNK_ROWS)


def _map(path: Path) -> pa.Table:
    return ipc.open_file(pa.memory_map(str(path))).read_all()


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
