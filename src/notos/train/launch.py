"""Several GPUs: a recipe with `accelerate_config` relaunches the same `notos train` command
under `accelerate launch`, one process per GPU; inside, transformers and TRL read the
distributed setup from the environment accelerate sets. Nothing else changes.

    notos train dpo --recipe zephyr-dpo --set accelerate_config=deepspeed_zero3

Shipped configs (src/notos/recipes/accelerate/): multi_gpu (DDP), deepspeed_zero2,
deepspeed_zero3 (`pip install deepspeed`); or a path to your own accelerate YAML.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from notos.errors import NotosError
from notos.shipped import ACCELERATE_CONFIGS
from notos.train.recipes import Recipe


def config_of(recipe: Recipe) -> Path | None:
    values = {s.recipe.accelerate_config for s in recipe.stages} - {None}
    if len(values) > 1:
        raise NotosError(f"recipe {recipe.origin}: stages name different accelerate_config files; use one")
    if not values:
        return None
    value = values.pop()
    if Path(value).is_file():
        return Path(value)
    shipped = ACCELERATE_CONFIGS / f"{Path(value).stem}.yaml"  # a bare name read from YAML became a path
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in ACCELERATE_CONFIGS.glob("*.yaml")))
    raise NotosError(f"accelerate_config {value}: no such file and no shipped config of that name ({names})")


def launched() -> bool:
    """Already one of the processes `accelerate launch` (or torchrun) started."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def command(config: Path, argv: list[str], gpus: int) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
            "--num_processes", str(gpus), "-m", "notos.cli", "train", *argv]


def relaunch(config: Path, argv: list[str]) -> int:
    import torch

    gpus = torch.cuda.device_count()
    if gpus < 1:
        raise NotosError("accelerate_config: multi-GPU training needs CUDA GPUs and this machine has none "
                         "(--set accelerate_config=null trains in this process)")
    print(f"notos: relaunching on {gpus} GPU(s) with accelerate ({config.name})", file=sys.stderr, flush=True)
    return subprocess.call(command(config, argv, gpus))
