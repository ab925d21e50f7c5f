"""What a path holds: the one place that decides it.

    loc = locate("runs/uf")        # Location(kind='run', format='parquet', files=(.../part-000000.parquet,), ...)
    for file in loc.data_files(): ...

Kinds, tried in this order:

    hub     hf://owner/name[:config], a dataset on the Hugging Face Hub (read by `datasets`)
    file    a file; its suffix names the format: .jsonl/.ndjson, .json, .parquet/.pq, .csv/.tsv
    run     a `notos run` folder (manifest.json): every leaf's data/<leaf>/part-*.parquet; its
            files are those of its only leaf (with several, name one: RUN/data/<leaf>)
    saved   a folder `datasets.save_to_disk` wrote (dataset_info.json, dataset_dict.json or state.json)
    curate  a `notos curate` output folder, or any folder holding data.parquet / data.jsonl:
            that one file (data.jsonl holds the same rows; removals.parquet etc. are not data)
    parts   any other folder: its Parquet files, else its JSONL files, found recursively
            (hidden folders and cache/ skipped: caches kept beside the data), part-N in numeric order

Only a run's manifest is read; the readers (`io.py`, `tables.py`) read the rows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from notos.errors import DataError

HUB_PREFIX = "hf://"
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet",
            ".csv": "csv", ".tsv": "csv"}
SAVED_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")
CURATE_FILES = ("data.parquet", "data.jsonl")
KINDS = ("hub", "file", "run", "saved", "curate", "parts")


@dataclass(frozen=True)
class Location:
    spec: str  # the path as given: what error messages name
    kind: str  # one of KINDS
    format: str  # of the files: jsonl | json | parquet | csv; `hf` for saved, `hub` for hub
    files: tuple[Path, ...] = ()  # the data files in read order (none for hub, saved, a run without one leaf)
    leaves: dict = field(default_factory=dict)  # run: leaf -> its part files, None while it has no folder
    manifest: dict = field(default_factory=dict)  # run: manifest.json as read
    problem: str | None = None  # run: why it gives no files (several leaves, no data yet)

    def data_files(self) -> tuple[Path, ...]:
        """The files to read, or a one-line DataError saying why there are none to choose."""
        if self.problem:
            raise DataError(self.problem)
        return self.files


def locate(spec: str | Path) -> Location:
    """Say what `spec` holds (see the module docstring); a one-line DataError when it holds no data."""
    text = str(spec)
    if text.startswith(HUB_PREFIX):
        return Location(text, "hub", "hub")
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{text}: no such file or folder")
    if not path.is_dir():
        return _file(text, path)
    if (path / "manifest.json").is_file():
        return _run(text, path)
    if any((path / name).exists() for name in SAVED_MARKERS):
        return Location(text, "saved", "hf")
    for name in CURATE_FILES:
        if (path / name).is_file():
            return Location(text, "curate", SUFFIXES[Path(name).suffix], (path / name,))
    for fmt in ("parquet", "jsonl"):
        files = _data_files_under(path, fmt)
        if files:
            return Location(text, "parts", fmt, tuple(files))
    raise DataError(f"{text}: folder holds no Parquet files (nor JSONL files, a run manifest or a saved dataset)")


def format_of(path: str | Path) -> str:
    """The format a file's suffix names; a one-line DataError for any other suffix."""
    suffix = Path(path).suffix.lower()
    fmt = SUFFIXES.get(suffix)
    if fmt is None:
        raise DataError(f"{path}: unknown file type '{suffix or '(none)'}' "
                        "(use .jsonl, .json, .parquet, .csv or a saved dataset folder)")
    return fmt


def part_order(file: Path):
    """Sort key: part-N files by N (no width limit), then any other file by name."""
    match = re.fullmatch(r"part-(\d+)", file.stem)
    return (0, int(match.group(1)), "") if match else (1, 0, file.name)


def leaf_parts(folder: Path) -> tuple[Path, ...]:
    """A run leaf's Parquet parts in order (its _notos.json and hidden temp files are not data)."""
    return tuple(sorted((f for f in folder.glob("*.parquet") if not f.name.startswith(".")), key=part_order))


def _file(text: str, path: Path) -> Location:
    fmt = format_of(path)
    if path.stat().st_size == 0:
        raise DataError(f"{text}: file is empty (no rows)")
    return Location(text, "file", fmt, (path,))


def _run(text: str, root: Path) -> Location:
    manifest_path = root / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        leaves_rel = manifest.get("leaves") or {}
        leaves = {str(leaf): root / rel for leaf, rel in leaves_rel.items()}
    except (json.JSONDecodeError, OSError, AttributeError, TypeError) as exc:
        raise DataError(f"{manifest_path}: not a readable run manifest ({exc})") from None
    parts = {leaf: (leaf_parts(folder) if folder.is_dir() else None) for leaf, folder in leaves.items()}
    files, problem = (), None
    if len(leaves) != 1:
        problem = f"{text}: run has leaves {', '.join(leaves) or '(none)'}; pass one of them as {text}/data/<leaf>"
    else:
        ((leaf, folder),) = leaves.items()
        if parts[leaf] is None:
            problem = f"{text}: leaf '{leaf}' has no data yet ({folder} is missing)"
        elif not parts[leaf]:
            problem = f"{text}: leaf '{leaf}' holds no rows"
        else:
            files = parts[leaf]
    return Location(text, "run", "parquet", files, parts, manifest, problem)


def _data_files_under(root: Path, fmt: str) -> list[Path]:
    suffixes = tuple(s for s, f in SUFFIXES.items() if f == fmt)
    found = [p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file()
             and not any(part.startswith(".") or part == "cache" for part in p.relative_to(root).parts)]
    return sorted(found, key=lambda p: (p.relative_to(root).parent.parts, part_order(p)))
