"""The flag names TRL's scripts and the alignment handbook use, as aliases of recipe keys, so
a user's `--learning_rate 5e-7 --model_name_or_path X --output_dir runs/x` just works:

    notos train dpo --recipe quickstart-dpo --model_name_or_path embedded --learning_rate 1e-4 \
        --dataset_name pairs/ --output_dir runs/dpo --max_steps 4

Any recipe key is also a flag (`--beta 0.2` is `--set beta=0.2`); dashes and underscores are
the same. In YAML and `--set` the aliases are accepted too. `--output_dir` is `--out`.
"""

from __future__ import annotations

import re
from pathlib import Path

from notos.errors import NotosError

ALIASES = {
    "model_name_or_path": "model",
    "dataset_name": "data",
    "dataset_path": "data",
    "dataset_train_split": "data_split",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "lr_scheduler_type": "lr_scheduler",
    "max_seq_length": "max_length",
    "optim": "optimizer",
}
# TRL's on/off flags that are one choice among several here.
SWITCHES = {"use_peft": ("method", {True: "lora", False: "full"}),
            "bf16": ("precision", {True: "bf16", False: "fp32"}),
            "fp16": ("precision", {True: "fp16", False: "fp32"})}
OUT_FLAGS = ("output_dir",)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def canonical(key: str, value):
    """(recipe key, value) for a key that may be a TRL / handbook name."""
    key = key.replace("-", "_")
    if key in SWITCHES:
        target, choices = SWITCHES[key]
        if value not in choices:
            raise NotosError(f"{key}: expected true or false (got {value!r})")
        return target, choices[value]
    target = ALIASES.get(key, key)
    if target == "data" and key != "data" and isinstance(value, str):
        value = _data_value(value)
    return target, value


def _data_value(value: str) -> str:
    """TRL's --dataset_name is a Hub id; a local path stays one (made absolute)."""
    if value.startswith("hf://") or Path(value).exists():
        return value if value.startswith("hf://") else str(Path(value).resolve())
    return f"hf://{value}" if HUB_ID.match(value) else value


def split_flags(args: list[str]) -> tuple[list[str], str | None]:
    """Extra command-line flags -> (`--set` items, the --output_dir value or None).
    `--key value`, `--key=value`; a flag followed by another flag (or nothing) is `true`."""
    items, out, i = [], None, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise NotosError(f"unexpected argument {arg!r} (flags are --key value, e.g. --learning_rate 1e-4)")
        key, sep, value = arg[2:].partition("=")
        if not sep:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            else:
                value = "true"
        i += 1
        if key.replace("-", "_") in OUT_FLAGS:
            out = value
        else:
            items.append(f"{key.replace('-', '_')}={value}")
    return items, out
