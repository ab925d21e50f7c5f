"""A memory-mapped copy of the completions table (and its audit) beside the review, so a restart
takes a second and the text lives in the page cache, not in the server's own memory.

    hit = load(folder, key)                       # (table, flags) when the cache is current, else None
    table = build(folder, options, size)          # a miss: read the data whole, write and map the table
    with appender(folder) as append: ...          # or: write it a batch at a time, then mapped(folder)
    finish(folder, key, flags)                    # the audit's flags, then key.json: the cache is whole

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
from contextlib import contextmanager
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


def load(folder: Path, key: dict):
    """(completions table, audit flags) memory-mapped from `folder` when its key is `key`; else None,
    and the folder is emptied for a rebuild."""
    folder = Path(folder)
    if _valid(folder, key):
        try:
            return _map(folder / "completions.arrow"), _map(folder / "flags.arrow")
        except (OSError, pa.ArrowInvalid):
            pass  # a damaged cache: rebuild it
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return None


def build(folder: Path, options: dict, size: int) -> pa.Table:
    """Read the data whole, write it as completions.arrow and map it. Data of `size` bytes over
    IN_PROCESS_BYTES is read in a child process: the reader's peak memory is the child's, handed
    back to the system when it exits."""
    path = Path(folder) / "completions.arrow"
    if size < IN_PROCESS_BYTES:
        _write(_read(options["read_from"], options["format"]), path)
    else:
        _read_in_child(options, path)
    return _map(path)


@contextmanager
def appender(folder: Path):
    """append(table) writes tables to completions.arrow as they come (renamed into place when the
    block ends; at least one table, all of one schema); `mapped(folder)` then maps the result."""
    schema, writer = None, None
    path = Path(folder) / "completions.arrow"
    with atomic_file(path) as tmp:
        def append(table: pa.Table) -> None:
            nonlocal schema, writer
            if writer is None:
                schema, writer = table.schema, ipc.new_file(str(tmp), table.schema)
            elif table.schema != schema:
                table = table.cast(schema)
            writer.write_table(table, max_chunksize=CHUNK_ROWS)

        try:
            yield append
        finally:
            if writer is not None:
                writer.close()


def mapped(folder: Path) -> pa.Table:
    return _map(Path(folder) / "completions.arrow")


def finish(folder: Path, key: dict, flags: pa.Table) -> None:
    """Write the audit's flags, then key.json: from now on the cache is whole and current."""
    _write(flags, Path(folder) / "flags.arrow")
    atomic_write_bytes(Path(folder) / "key.json", json.dumps(key).encode())


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
