"""What `notos review DIR` (and export / push) reads: the completions behind any input.

    source = load_source(Path("out/audit"))     # Source(completions, strategy, seed, data_path, ...)

- a `notos curate` output of audit, binarize or compare holds flags or pairs, not the rated
  completions: its config.json names the input, which is read instead (binarize's strategy and
  seed become the review's, so "chosen" means what that output chose);
- a decontaminate / dedup output, a run folder, UltraFeedback records, the generic form or a
  completions table: read by `notos.data.records`;
- TRL preference pairs (prompt, chosen, rejected): two completions per prompt, chosen first,
  rated by score_chosen / score_rejected when present (as aspect "score").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.data.completions import Completions, completions_from_rows
from notos.data.locate import locate
from notos.data.records import read_completions, read_raw
from notos.data.tables import read_table
from notos.errors import DataError

FOLLOW_INPUT = ("audit", "binarize", "compare")


@dataclass
class Source:
    completions: Completions | None  # None until `read_source`
    strategy: str
    seed: int
    data_path: Path  # what the edits log is kept beside
    config: dict  # the curate config.json, or {} for other inputs
    read_from: Path  # where the rated completions are read from
    format: str


def load_source(path: Path, strategy: str | None = None, seed: int | None = None) -> Source:
    return read_source(resolve_source(path, strategy, seed))


def resolve_source(path: Path, strategy: str | None = None, seed: int | None = None) -> Source:
    """What to read for `path` and how to binarize it; nothing is read yet."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    config = _curate_config(path)
    options = config.get("options", {}) if config else {}
    read_from = path
    if config.get("command") in FOLLOW_INPUT:
        read_from = Path(config.get("input", ""))
        if not read_from.exists():
            raise DataError(f"{path}/config.json: its input {read_from} is gone; review that data directly")
    strategy = strategy or options.get("strategy") or "mean"
    seed = options.get("seed", 0) if seed is None else seed
    return Source(None, strategy, int(seed), path, config, read_from, options.get("format", "auto"))


def read_source(source: Source) -> Source:
    try:
        completions = read_completions(source.read_from, format=source.format)
    except DataError as exc:
        pairs = _pairs_completions(source.read_from)
        if pairs is None:
            raise exc from None
        completions = pairs
    principle = principles(source.read_from, completions.table.num_rows)
    if principle is not None:  # UltraFeedback's per-completion principle, for the record view
        completions = Completions(completions.table.append_column("principle", principle), completions.aspects)
    source.completions = completions
    return source


def principles(path: Path, rows: int):
    """completions[].principle of UltraFeedback records, one per completion row (None: absent).
    The completions reader skips this leaf; from Parquet only that leaf is read back."""
    try:
        location = locate(path)
        if location.format == "parquet":
            raw = read_table(location, columns=lambda paths: [p for p in paths if p.endswith(".principle")] or
                             [p for p in paths if p.startswith("completions.")][:1])
        elif location.format in ("jsonl", "json"):
            raw = read_raw(path)
        else:
            return None
        if "completions" not in raw.column_names:
            return None
        flat = pc.list_flatten(raw.column("completions"))
        if not pa.types.is_struct(flat.type) or flat.type.get_field_index("principle") < 0 or len(flat) != rows:
            return None
        return pc.cast(pc.struct_field(flat, "principle"), pa.string())
    except (DataError, pa.ArrowException, NotImplementedError):
        return None


def data_files(source: Source) -> list[Path] | None:
    """The files the completions come from (None: not plain files, e.g. a saved dataset)."""
    try:
        location = locate(source.read_from)
    except DataError:
        return None
    return list(location.files) if location.kind in ("file", "run", "curate", "parts") and location.files else None


def _curate_config(path: Path) -> dict:
    file = path / "config.json"
    if not path.is_dir() or not file.is_file():
        return {}
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) and config.get("tool") == "notos curate" else {}


def _pairs_completions(path: Path) -> Completions | None:
    """TRL pairs as a completions table (None when `path` holds no pairs): chosen is completion 0,
    rejected 1; overall_score is score_chosen / score_rejected, or 2 and 1 (their ranks) where the
    pairs carry no scores, so the view shows each pair as written (strategy "overall")."""
    raw = read_raw(path)
    if not {"chosen", "rejected"} <= set(raw.column_names):
        return None
    rows = []
    for position, row in enumerate(raw.to_pylist()):
        pid = str(row.get("prompt_id") or row.get("id") or position)
        prompt = _text(row.get("prompt"))
        for k, side in enumerate(("chosen", "rejected")):
            score = row.get(f"score_{side}")
            rows.append({"prompt_id": pid, "prompt": prompt, "source": row.get("source"), "completion_index": k,
                         "model": row.get(f"model_{side}"), "response": _text(row.get(side), last=True),
                         "overall_score": float(score) if score is not None and np.isfinite(score) else 2.0 - k})
    return completions_from_rows(rows, aspects=())


def _text(value, last: bool = False) -> str:
    """A message list's text (the last turn for a reply, user turns joined for a prompt), or the string."""
    if isinstance(value, list):
        turns = [m.get("content", "") for m in value if isinstance(m, dict)]
        return (turns[-1] if turns else "") if last else "\n\n".join(turns)
    return "" if value is None else str(value)

