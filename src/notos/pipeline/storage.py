"""Where a run folder lives: a local path, or a URI (`s3://bucket/prefix`, `gs://...`, and
whatever else `pyarrow.fs` or `fsspec` resolve), so the workers of a cluster share one run folder.

The store (store.py) says *what* it writes; the files object here says *how* it becomes
durable and atomic where it lives:

- `LocalFiles`: temp file, fsync, rename (data/atomic.py) — rename is atomic on a local disk.
- `ObjectFiles`: object stores have no rename, but one PUT is atomic (the object appears whole,
  or not at all; a multipart upload only at its completion). A committed batch is two objects:
  the part, then its commit marker `PART.ok`, written last. `names()` lists only parts with a
  marker, so a reader never trusts a part whose writer died before committing it; a part
  without its marker is written again by the next run under the same name.

Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ...), never from
the URI, so none reach the manifest or the logs.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from notos.data.atomic import atomic_file, atomic_write_bytes
from notos.errors import NotosError
from notos.pipeline.tables import unify_part_schemas

MARK = ".ok"  # the commit marker beside a part on an object store


def is_uri(root) -> bool:
    return isinstance(root, str) and "://" in root and not root.startswith("file://")


def local_path(root) -> Path:
    """A local root as a Path (`file:///x` is /x)."""
    return Path(root[len("file://"):]) if isinstance(root, str) and root.startswith("file://") else Path(root)


def files_for(root):
    """The files object for a run folder given as a path or a URI."""
    return ObjectFiles(root) if is_uri(root) else LocalFiles(local_path(root))


class LocalFiles:
    """A run folder on a local (or network-mounted) disk: the store's original fast path."""

    remote = False

    def __init__(self, root: Path):
        self.root = root

    def path(self, rel: str) -> Path:
        return self.root / rel

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except FileNotFoundError:
            return None

    def write_bytes(self, rel: str, data: bytes) -> None:
        atomic_write_bytes(self.root / rel, data)

    def commit_bytes(self, rel: str, data: bytes) -> None:
        atomic_write_bytes(self.root / rel, data)

    def commit_table(self, rel: str, table: pa.Table) -> None:
        with atomic_file(self.root / rel) as tmp:
            pq.write_table(table, tmp)

    def read_table(self, rel: str) -> pa.Table | None:
        path = self.root / rel
        return pq.read_table(path) if path.exists() else None

    def names(self, rel: str) -> list[str]:
        """Entry names in a folder (none if it is not there)."""
        folder = self.root / rel
        return [entry.name for entry in os.scandir(folder)] if folder.is_dir() else []

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)

    def makedirs(self, rel: str) -> None:
        (self.root / rel).mkdir(parents=True, exist_ok=True)


class ObjectFiles:
    """A run folder under a URI prefix on an object store (or any pyarrow / fsspec filesystem)."""

    remote = True

    def __init__(self, uri: str):
        self.root = uri.rstrip("/")
        self.fs, self.base = _filesystem(self.root)

    def key(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.key(rel)).type != pafs.FileType.NotFound

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self.key(rel)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def write_bytes(self, rel: str, data: bytes) -> None:
        # One PUT: readers see the old object or the new one.
        with self.fs.open_output_stream(self.key(rel)) as stream:
            stream.write(data)

    def commit_bytes(self, rel: str, data: bytes) -> None:
        self.write_bytes(rel, data)
        self.write_bytes(rel + MARK, b"")

    def commit_table(self, rel: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)  # whole in memory first: nothing is uploaded if writing fails
        self.commit_bytes(rel, sink.getvalue().to_pybytes())

    def read_table(self, rel: str) -> pa.Table | None:
        try:
            return pq.read_table(self.key(rel), filesystem=self.fs)
        except FileNotFoundError:
            return None

    def listing(self, rel: str) -> list[str]:
        """Every object name directly under `rel`, committed or not."""
        selector = pafs.FileSelector(self.key(rel), allow_not_found=True)
        return [info.base_name for info in self.fs.get_file_info(selector)]

    def names(self, rel: str) -> list[str]:
        """Names under `rel` a reader may trust: parts with their commit marker, and plain
        objects (markers of failed rows, `_complete.json`); never a marker itself."""
        found = set(self.listing(rel))
        trusted = []
        for name in found:
            if name.endswith(MARK):
                continue
            if name.startswith("part-") and not name.endswith(".failed") and name + MARK not in found:
                continue  # written by a run that died before committing it
            trusted.append(name)
        return trusted

    def delete(self, rel: str) -> None:
        for key in (self.key(rel) + MARK, self.key(rel)):  # the marker first: never a marker alone
            try:
                self.fs.delete_file(key)
            except FileNotFoundError:
                pass

    def makedirs(self, rel: str) -> None:
        self.fs.create_dir(self.key(rel), recursive=True)


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # not a scheme Arrow knows: ask fsspec
    except OSError as exc:
        raise NotosError(f"--out {uri}: {str(exc).splitlines()[0]}") from None
    try:
        import fsspec
        from fsspec.core import split_protocol
    except ImportError:
        raise NotosError(f"--out {uri}: unknown storage scheme (pip install fsspec and its plugin for it)") from None
    protocol, path = split_protocol(uri)
    try:
        handler = pafs.FSSpecHandler(fsspec.filesystem(protocol))
    except (ImportError, ValueError) as exc:
        raise NotosError(f"--out {uri}: {str(exc).splitlines()[0]}") from None
    return pafs.PyFileSystem(handler), path.rstrip("/")


def publish_leaf(files: ObjectFiles, leaf: str, fingerprint: str, parts: list[str]) -> int:
    """data/LEAF on an object store, for the leaf's committed `parts` (in batch order): each part
    under a name of this publication, then their list (`data/LEAF/_notos.json`) written last —
    the commit of the whole folder — then the previous publication's objects removed. A reader
    that goes by `_notos.json` (load_run does) sees the old rows or the new, never a mix.
    Returns the number of rows."""
    folder = f"data/{leaf}"
    generation = uuid.uuid4().hex[:8]
    names, rows = [], 0
    with tempfile.TemporaryDirectory(prefix="notos-publish-") as stage:
        staged = []
        for n, rel in enumerate(parts):
            data = files.read_bytes(rel)
            if data is None:  # a batch with no rows has no Parquet part
                continue
            path = Path(stage) / f"part-{n:06d}.parquet"
            path.write_bytes(data)
            staged.append(path)
        unify_part_schemas(staged)  # as on a local disk: one schema for the whole leaf
        for path in staged:
            name = f"{path.stem}-{generation}.parquet"
            files.write_bytes(f"{folder}/{name}", path.read_bytes())
            rows += pq.ParquetFile(path).metadata.num_rows
            names.append(name)
    listing = {"step": leaf, "fingerprint": fingerprint, "rows": rows, "files": names}
    files.write_bytes(f"{folder}/_notos.json", json.dumps(listing).encode())
    for old in set(files.listing(folder)) - {*names, "_notos.json"}:
        files.delete(f"{folder}/{old}")
    return rows


def read_leaf(files, leaf: str) -> pa.Table | None:
    """A published leaf of a run folder on an object store, by its `_notos.json`; None if the
    leaf has not been published yet."""
    listing = files.read_bytes(f"data/{leaf}/_notos.json")
    if listing is None:
        return None
    tables = [files.read_table(f"data/{leaf}/{name}") for name in json.loads(listing)["files"]]
    return pa.concat_tables(tables) if tables else pa.table({"row_id": pa.array([], pa.string())})
