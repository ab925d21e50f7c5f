"""Running a recipe: one trainer, or stages in order, each starting from the model the stage
before it wrote (OpenBezoar: SFT on scheme A, then B, then C, then HH-RLHF, then DPO).

    OUT/stages/01-lamini/   one output folder per stage (see outputs.py)
    OUT/stages/02-evol/     its model: the previous stage's merged model + this stage's adapter
    OUT/notos-train.json    the stages' summaries; `final_stage` names the folder to use next

A rerun on the same folder resumes: finished stages resume at their last step (nothing to
do), the interrupted one from its last checkpoint.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import yaml

from notos.train.models import RUN_MARKER, quiet_renamed_apis
from notos.train.recipes import Recipe


def run_recipe(recipe: Recipe, out: Path) -> list[dict]:
    if not recipe.staged:
        only = recipe.stages[0].recipe
        return [runner(only.kind)(only, out)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe.raw, sort_keys=False), encoding="utf-8")
    summaries, previous = [], None
    for number, stage in enumerate(recipe.stages, 1):
        stage_out = out / "stages" / f"{number:02d}-{stage.name}"
        r = stage.recipe if previous is None else replace(stage.recipe, model=str(previous))
        print(f"notos: stage {number}/{len(recipe.stages)} '{stage.name}' ({r.kind}) -> {stage_out}", flush=True)
        summaries.append({"stage": stage.name, **runner(r.kind)(r, stage_out)})
        previous = stage_out
    marker = {"stages": summaries, "final_stage": str(previous)}
    (out / RUN_MARKER).write_text(json.dumps(marker, indent=2, default=float), encoding="utf-8")
    return summaries


def runner(kind: str):
    """The function that trains one recipe of this kind (imported on demand: each pulls in TRL)."""
    if kind == "sft":
        from notos.train.sft import run_sft as train
    elif kind == "dpo":
        from notos.train.dpo import run_dpo as train
    else:
        from notos.train.reward import run_rm as train
    return functools.partial(_without_renamed_api_warnings, train)


def _without_renamed_api_warnings(train, recipe, out):
    from notos.train.progress import quiet_libraries

    with quiet_renamed_apis(), quiet_libraries():
        return train(recipe, out)
