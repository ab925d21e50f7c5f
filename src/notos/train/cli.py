"""`notos train sft|dpo|rm|stages --recipe NAME_OR_FILE [--set key=value ...] [--data PATH] [--out DIR]`.

`sft`, `dpo` and `rm` run a recipe of that kind; `stages` runs a recipe that lists `stages:`
(OpenBezoar's SFT, SFT, SFT, SFT, DPO). `notos train recipes` lists the shipped ones. Rerun the
same command on the same --out folder to resume from the last checkpoint. Any recipe key, and
the flag names of TRL's scripts (`--learning_rate`, `--model_name_or_path`, `--dataset_name`,
`--output_dir`, ...: aliases.py), can be given as a flag: `--beta 0.2` is `--set beta=0.2`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from notos.errors import NotosError

train_app = typer.Typer(help="Train with TRL: SFT, DPO, a reward model, or staged recipes (OpenBezoar).",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

RECIPE = typer.Option(..., "--recipe", "-r", help="A shipped recipe name (see `notos train recipes`) or a YAML file.")
SET = typer.Option([], "--set", "-s", help="Set a recipe key: key=value, or STAGE.key=value (repeatable).")
DATA = typer.Option(None, "--data", "-d", help="Training data: Parquet / JSONL file or folder (what `notos curate binarize` writes).")
OUT = typer.Option(None, "--out", "-o", help="Output folder (default: runs/train/<recipe>). Rerun on it to resume.")
DRY = typer.Option(False, "--dry-run", help="Validate the recipe and its data (columns included), print it resolved; train nothing.")
# Unknown flags reach the command as ctx.args: recipe keys and TRL's names (aliases.py).
FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}


@train_app.command(context_settings=FLAGS)
def sft(ctx: typer.Context, recipe: str = RECIPE, set_: list[str] = SET, data: str = DATA, out: Path = OUT,
        dry_run: bool = DRY):
    """Supervised fine-tuning (full, LoRA, QLoRA) on conversations or prompt/completion pairs."""
    train("sft", recipe, set_, data, out, dry_run, ctx.args)


@train_app.command(context_settings=FLAGS)
def dpo(ctx: typer.Context, recipe: str = RECIPE, set_: list[str] = SET, data: str = DATA, out: Path = OUT,
        dry_run: bool = DRY):
    """Direct preference optimisation on (prompt, chosen, rejected) pairs."""
    train("dpo", recipe, set_, data, out, dry_run, ctx.args)


@train_app.command(context_settings=FLAGS)
def rm(ctx: typer.Context, recipe: str = RECIPE, set_: list[str] = SET, data: str = DATA, out: Path = OUT,
        dry_run: bool = DRY):
    """A Bradley-Terry reward model on (chosen, rejected) pairs; reports held-out pairwise accuracy."""
    train("rm", recipe, set_, data, out, dry_run, ctx.args)


@train_app.command(context_settings=FLAGS)
def stages(ctx: typer.Context, recipe: str = RECIPE, set_: list[str] = SET, out: Path = OUT, dry_run: bool = DRY):
    """A recipe with `stages:`, run in order, each stage starting from the one before."""
    train("stages", recipe, set_, None, out, dry_run, ctx.args)


@train_app.command()
def recipes():
    """List the training recipes shipped with notos."""
    from notos.shipped import TRAINING_RECIPES
    from notos.train.recipes import read_yaml

    for path in sorted(TRAINING_RECIPES.glob("*.yaml"), key=lambda p: p.stem):
        config = read_yaml(path)
        kind = "stages" if "stages" in config else config.get("kind", "?")
        typer.echo(f"{path.stem:<18} {kind:<7} {str(config.get('description', '')).strip().splitlines()[0]}")


def train(command: str, spec: str, overrides: list[str], data: str | None, out: Path | None, dry_run: bool,
          flags: list[str] = ()) -> None:
    from notos.train.aliases import split_flags
    from notos.train.recipes import load_recipe

    items, output_dir = split_flags(list(flags))
    if output_dir is not None and out is not None and Path(output_dir) != out:
        raise NotosError(f"--out {out} and --output_dir {output_dir} disagree; give one of them")
    out = out or (Path(output_dir) if output_dir is not None else None)
    overrides = [*overrides, *items]
    recipe = load_recipe(spec, overrides, data)
    kind = "stages" if recipe.staged else recipe.stages[0].recipe.kind
    if kind != command:
        raise NotosError(f"recipe '{spec}' is a {kind} recipe: run `notos train {kind} --recipe {spec}`")
    if dry_run:
        from dataclasses import asdict

        import yaml

        for stage in recipe.stages:
            typer.echo(yaml.safe_dump({stage.name: asdict(stage.recipe)}, sort_keys=False).rstrip())
        check_inputs(recipe, data, out, check_output=False)
        typer.echo(f"recipe and data are valid ({'; '.join(_data_line(s) for s in recipe.stages)}); nothing trained")
        return
    from notos.train import launch

    out = out or Path("runs") / "train" / recipe.name
    config = launch.config_of(recipe)
    if not launch.launched():  # the processes accelerate starts find the folder begun
        check_inputs(recipe, data, out)
    if config and not launch.launched():
        argv = [command, "--recipe", spec, *[a for item in overrides for a in ("--set", item)],
                *(["--data", data] if data else []), "--out", str(out)]
        raise typer.Exit(launch.relaunch(config, argv))
    from notos.train.run import run_recipe

    summaries = run_recipe(recipe, out)
    for stage, summary in zip(recipe.stages, summaries):
        typer.echo(f"{stage.name}: " + json.dumps(_headline(summary), default=float))
    typer.echo(f"output: {out} (model/, metrics.jsonl, report.html)")


def _data_line(stage) -> str:
    data = stage.recipe.data or "no data"
    return f"{stage.name}: {data}" + (" (Hub data: read when training starts)" if data.startswith("hf://") else "")


def check_inputs(recipe, data: str | None, out: Path | None, check_output: bool = True) -> None:
    """What a user can get wrong, checked before any model is loaded or anything written: each
    stage's data (exists, reads, has rows and the needed columns) and the output folder."""
    from notos.train.data import check_data
    from notos.train.outputs import check_out
    from notos.train.shared import need_data

    for stage in recipe.stages:
        r = stage.recipe
        if recipe.staged and not r.data:
            raise NotosError(f"stage '{stage.name}' names no data: give it some with --set {stage.name}.data=PATH")
        need_data(r)
        where = f"stage '{stage.name}' " if recipe.staged else ""
        check_data(r.data, "--data" if data is not None else f"{where}data", r.kind, r.data_split, r.text_as_chat)
        if r.eval_data:
            check_data(r.eval_data, f"{where}eval_data", r.kind, r.eval_split, r.text_as_chat)
    if check_output:
        check_out(out)


def _headline(summary: dict) -> dict:
    keys = ("steps", "train_seconds", "final_loss", "final_rewards/accuracies", "final_rewards/margins", "eval_loss",
            "heldout_accuracy", "ref_logps")
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items() if k in keys and v is not None}
