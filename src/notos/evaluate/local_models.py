"""A local folder given where an LLM spec is expected (`--model runs/dpo`): the spec that loads it.

    notos train output    its merged/ model, else its full model/ (a staged run: its final stage)
    a transformers folder (config.json)      transformers:FOLDER
    a LoRA adapter alone  an error saying how to get a loadable model (merge it)

Anything that is not an existing folder is returned as it is, for the spec parser to judge.
(`notos.train` may not be imported from here: the floors in ARCHITECTURE.md. The files are
read directly; `notos-train.json` is what marks a training output.)
"""

from __future__ import annotations

import json
from pathlib import Path

from notos.errors import NotosError

TRAIN_MARKER = "notos-train.json"


def local_spec(value, option: str = "--model"):
    if not isinstance(value, str) or "://" in value or ":" in value.split("/")[0]:
        return value  # a mapping, a URL, or a prefixed spec (transformers:..., openai:...)
    folder = Path(value)
    if not folder.is_dir():
        return value
    if (folder / TRAIN_MARKER).is_file():
        return _training_output(folder, option)
    if (folder / "config.json").is_file():
        return f"transformers:{folder}"
    if (folder / "adapter_config.json").is_file():
        raise NotosError(f"{option} {value}: a LoRA adapter alone; evaluate a merged model (train with --set merge=true "
                         "and pass the training folder)")
    return value


def _training_output(folder: Path, option: str) -> str:
    try:
        marker = json.loads((folder / TRAIN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        marker = {}
    final = marker.get("final_stage") if isinstance(marker, dict) else None
    if final and Path(final).is_dir():
        return _training_output(Path(final), option)
    for sub in ("merged", "model"):
        if (folder / sub / "config.json").is_file():
            return f"transformers:{folder / sub}"
    raise NotosError(f"{option} {folder}: this training output holds a LoRA adapter and no merged model; rerun the "
                     "same `notos train` command with --set merge=true")
