"""The whole loop as commands: `notos quickstart` (the loop end to end) and
`notos experiment binarization` (critique score or mean rating: which trains the better model?)."""

from __future__ import annotations

from pathlib import Path

import typer

from notos.errors import NotosError

experiment_app = typer.Typer(help="Experiments over the whole loop: data rule -> DPO -> evaluation, per arm.",
                             no_args_is_help=True)


OUT_QS = typer.Option(Path("runs/quickstart"), "--out", "-o", help="Run folder; rerun on it to resume (finished stages take seconds).")
PROMPTS = typer.Option(12, "--prompts", "-n", min=2, help="Use the first N of the prompts (22 are bundled; the planted contaminated one is the 6th). The default keeps the loop near 3 minutes on 2 cores.")
INPUT = typer.Option(None, "--input", "-i", help="Your own prompts instead (JSONL / Parquet / CSV with an `instruction` column).")
SET_QS = typer.Option([], "--set", "-s", help="Set an option of the quickstart recipe (step.option=value) or, as train.KEY=VALUE, of the DPO recipe (repeatable).")
RATED = typer.Argument(..., help="Rated data: an `ultrafeedback` run folder, UltraFeedback records, the generic form, or a curate output (human edits applied).")
OUT_EXP = typer.Option(..., "--out", "-o", help="Experiment folder; rerun on it to resume at any stage.")
SET_EXP = typer.Option([], "--set", "-s", help="Set a key of the DPO recipe for every arm: train.KEY=VALUE, e.g. train.model=HUB_ID (repeatable).")


def quickstart(
    out: Path = OUT_QS,
    prompts: int = PROMPTS,
    input: Path = INPUT,
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="Tokens per generated answer (generation and evaluation)."),
    steps: int = typer.Option(6, "--steps", min=1, help="LoRA DPO steps."),
    eval_prompts: int = typer.Option(6, "--eval-prompts", min=1, max=80, help="MT-Bench first turns the model is evaluated on, before and after DPO."),
    judge: str = typer.Option("embedded", "--judge", help="The pairwise judge of the before/after evaluation (an LLM spec: embedded, openai:gpt-4o, http://HOST/v1 ...)."),
    set_: list[str] = SET_QS,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars while generating and judging."),
):
    """The whole loop on the embedded model, offline: AI feedback -> audit -> decontaminate ->
    binarize -> LoRA DPO -> before/after win rate -> one report.html."""
    from notos.recipes.loop import LoopOptions, run_quickstart

    pipeline_sets, train_sets = split_sets(set_)
    run_quickstart(LoopOptions(out=out, prompts=prompts, input=input, max_new_tokens=max_new_tokens, steps=steps,
                               eval_prompts=eval_prompts, judge=judge, sets=pipeline_sets, train_sets=train_sets,
                               progress=progress))


@experiment_app.command("binarization")
def binarization(
    input: Path = RATED,
    out: Path = OUT_EXP,
    rules: str = typer.Option("critique,mean", "--rules", help="Two or more binarization rules, comma-separated: critique (the critique's overall score, Zephyr), mean (the mean aspect rating, Notus), best-worst, all-pairs."),
    judge: str = typer.Option("embedded", "--judge", help="The judge (an LLM spec). The embedded model is a mechanics check only; a strong judge also grades MT-Bench."),
    recipe: str = typer.Option("quickstart-dpo", "--recipe", "-r", help="The DPO recipe every arm trains with (a shipped name or a YAML file)."),
    set_: list[str] = SET_EXP,
    eval_prompts: int = typer.Option(16, "--eval-prompts", min=1, max=80, help="MT-Bench first turns each model answers for the pairwise win rates."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, help="Tokens per answer in the evaluation."),
    mt_bench: bool = typer.Option(None, "--mt-bench/--no-mt-bench", help="Grade each model on MT-Bench too (default: when --judge is not the embedded model)."),
    drop_flags: str = typer.Option("missing_rating,duplicate_response", "--drop-flags", help="The audit's fixes: completions flagged with these are dropped before binarizing ('' keeps all)."),
    format: str = typer.Option("auto", "--format", help="Input shape: auto, ultrafeedback, generic or completions."),
    seed: int = typer.Option(0, "--seed", help="Seed of binarization's random choices (training uses the recipe's seed)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars while answering and judging."),
):
    """Critique score or mean rating? Binarize the same data under each rule, train one DPO model
    per rule from the same start, and compare them against the start and against each other."""
    from notos.recipes.experiment import ExperimentOptions, run_binarization

    pipeline_sets, train_sets = split_sets(set_)
    if pipeline_sets:
        raise NotosError(f"--set {pipeline_sets[0]}: the experiment takes train.KEY=VALUE (a key of the DPO recipe)")
    if not input.exists():
        raise NotosError(f"{input}: no such file or folder")
    run_binarization(ExperimentOptions(
        input=input, out=out, rules=[r.strip() for r in rules.split(",") if r.strip()], judge=judge, recipe=recipe,
        train_sets=train_sets, eval_prompts=eval_prompts, max_new_tokens=max_new_tokens, mt_bench=mt_bench,
        drop_flags=[f.strip() for f in drop_flags.split(",") if f.strip()], format=format, seed=seed, progress=progress))


def split_sets(items: list[str]) -> tuple[list[str], list[str]]:
    """(pipeline overrides, DPO recipe overrides): `train.KEY=VALUE` goes to the recipe."""
    pipeline, train = [], []
    for item in items:
        if "=" not in item:
            raise NotosError(f"--set {item}: expected KEY=VALUE")
        (train if item.startswith("train.") else pipeline).append(item.removeprefix("train."))
    return pipeline, train


def register(app) -> None:
    """Add this module's commands to the top-level Typer app (called once per process)."""
    app.command(name="quickstart")(quickstart)
    app.add_typer(experiment_app, name="experiment")
