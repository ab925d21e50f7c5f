"""Writes that a crash cannot leave half done: the old version or the new one, never a mix.

    atomic_write_bytes(path, data)      a file: a temp file beside it, fsync, rename, fsync the folder
    with atomic_file(path) as tmp: ...  the same for writers that want a path (pq.write_table, ...)
    replace_folder(new, final)          a folder written aside (`new`) swapped in for `final`
    recover_folder(final)               put back the old folder a crash left mid-swap

Temp files are named `.NAME.tmp-PID` and a folder being replaced waits as `.NAME.old`, so a
reader that skips hidden names never sees either.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_path(target: str | Path) -> Path:
    """Where a write of `target` goes before it is renamed into place."""
    target = Path(target)
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it is fsynced and renamed to `target`, on any
    failure removed, so `target` is the old file or the new one."""
    target = Path(target)
    tmp = temp_path(target)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (temp file, fsync, rename)."""
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)


def write_json(path: str | Path, data, default=None) -> Path:
    """Indented JSON, atomically (a reader never sees half a file)."""
    import json

    return atomic_write_bytes(path, json.dumps(data, indent=2, ensure_ascii=False, default=default).encode("utf-8"))


def old_path(final: str | Path) -> Path:
    """Where `replace_folder` keeps the folder it replaces until the new one is in place."""
    final = Path(final)
    return final.with_name(f".{final.name}.old")


def replace_folder(new: str | Path, final: str | Path, fsync_files: bool = True) -> Path:
    """Swap the freshly written folder `new` in as `final` (same parent folder).

    The files of `new` are fsynced first (`fsync_files=False` when they already are: hard links
    to committed parts); the old `final` moves to `.NAME.old`, `new` is renamed
    to `final`, and only then is the old one removed. A crash before the second rename leaves the
    old folder at `.NAME.old`, which `recover_folder(final)` (called here first) puts back.
    """
    new, final = Path(new), Path(final)
    recover_folder(final)
    for folder, _, files in os.walk(new):
        for name in files if fsync_files else ():
            with open(os.path.join(folder, name), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(folder)
    old = old_path(final)
    if final.exists():
        final.rename(old)
    new.rename(final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final


def recover_folder(final: str | Path) -> None:
    """Undo what a crash inside `replace_folder` left: the old folder back at `final` when the
    new one never arrived, else the leftover old one removed."""
    final = Path(final)
    old = old_path(final)
    if not old.exists():
        return
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.rename(final)
