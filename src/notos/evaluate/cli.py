"""`notos eval ...`: every evaluation command, thin over the modules that do the work
(mt_bench.py, judged_winrate.py and winrate.py, harness.py, compare_runs.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from notos.errors import NotosError

eval_app = typer.Typer(help="Evaluate models: MT-Bench, win rate vs a baseline, LM Eval Harness, compare runs.",
                       no_args_is_help=True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


def _default_out(model_name: str | None, model: str) -> Path:
    return Path("runs") / f"mt-bench-{_slug(model_name or model.rstrip('/').rsplit('/', 1)[-1])}"


@eval_app.command("mt-bench")
def mt_bench(
    model: str = typer.Option(..., "--model", help="The model to evaluate (an LLM spec: embedded, openai:MODEL, http://HOST/v1, transformers:PATH, vllm:PATH ...)."),
    judge: str = typer.Option(..., "--judge", help="The judge model (an LLM spec); a strong one, e.g. openai:gpt-4o."),
    questions: Path = typer.Option(..., "--questions", help="MT-Bench questions: FastChat's fastchat/llm_judge/data/mt_bench/question.jsonl (question_id, category, turns) - not shipped with notos."),
    references: Path = typer.Option(None, "--references", help="Reference answers (question_id, choices[0].turns), e.g. FastChat's reference_answer/gpt-4.jsonl; shown to the judge for math, reasoning and coding."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: runs/mt-bench-<model>). Rerun on the same folder to resume."),
    question_ids: str = typer.Option(None, "--question-ids", help="Only these questions, e.g. 81,82,116."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="At most this many questions (after --question-ids), spread evenly over the categories (one of each in turn), not the first N."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, help="Tokens per answer turn (default 1024, FastChat's; a rerun on the same folder keeps its own)."),
    judge_max_new_tokens: int = typer.Option(None, "--judge-max-new-tokens", min=1, help="Tokens per verdict (default 2048, FastChat's; a rerun on the same folder keeps its own)."),
    model_name: str = typer.Option(None, "--model-name", help="Name recorded as model_id (default: the backend's model name)."),
    judge_mode: str = typer.Option(None, "--judge-mode", help="text: the judge writes its verdict; logprob: the verdict is read from its probabilities (small local judges always give one); auto (the default): logprob for local judges, text for servers."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars for answering and judging."),
):
    """MT-Bench: answer both turns of each question, grade each turn 1-10 with the judge, report the means."""
    from notos.evaluate.mt_bench import run_mt_bench

    out_dir = out or _default_out(model_name, model)
    summary = run_mt_bench(model, judge, questions, out_dir, references=references, question_ids=question_ids,
                           limit=limit, max_new_tokens=max_new_tokens, judge_max_new_tokens=judge_max_new_tokens,
                           model_name=model_name, progress=progress, judge_mode=judge_mode)
    print_mt_bench(summary, out_dir)


def print_mt_bench(summary: dict, out_dir) -> None:
    from rich.console import Console
    from rich.table import Table

    from notos.data.mt_bench import ANSWERS, JUDGMENTS

    def fmt(value):
        return "-" if value is None else f"{value:.2f}"

    table = Table(title=f"MT-Bench: {summary.get('model')} judged by {summary.get('judge')}", title_justify="left")
    for column in ("category", "turn 1", "turn 2", "mean"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for cat, mean in summary["per_category"].items():
        turns = summary["per_category_turn"][cat]
        table.add_row(cat, fmt(turns["turn_1"]), fmt(turns["turn_2"]), fmt(mean))
    table.add_row("[bold]overall[/bold]", fmt(summary["turn_1"]), fmt(summary["turn_2"]), f"[bold]{fmt(summary['overall'])}[/bold]")
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"  {summary['n_judged']} verdicts on {summary['n_questions']} questions, "
                  f"{summary['n_failed_to_parse']} could not be read (score -1, left out of the means)")
    if summary["n_unanswered"] or summary["n_unjudged"]:
        console.print(f"  [yellow]{summary['n_unanswered']} questions unanswered, {summary['n_unjudged']} turns unjudged "
                      "(requests failed): rerun the same command to retry them[/yellow]")
    console.print(f"  wrote {out_dir}/{{{ANSWERS}, {JUDGMENTS}, summary.json, report.html}}", highlight=False)


@eval_app.command("winrate")
def winrate(
    annotations: Path = typer.Option(None, "--annotations", help="Existing pairwise annotations in AlpacaEval's format (JSON list or JSONL: instruction, output_1, generator_1, output_2, generator_2, preference); figures are output_2's generator against output_1's."),
    instructions: Path = typer.Option(None, "--instructions", help="Instructions to judge on (AlpacaEval's outputs format: an `instruction` field per row; other fields are ignored). Default: those of --model-outputs or the --baseline file."),
    model: str = typer.Option(None, "--model", help="The model to evaluate, as an LLM spec (embedded, openai:MODEL, http://HOST/v1, transformers:PATH ...): it answers every instruction."),
    model_outputs: Path = typer.Option(None, "--model-outputs", help="The model's answers instead, in AlpacaEval's outputs format (instruction, output, generator)."),
    baseline: str = typer.Option(None, "--baseline", help="The baseline: an outputs FILE (instruction, output, generator), or an LLM SPEC that answers the instructions."),
    judge: str = typer.Option(None, "--judge", help="The pairwise judge, as an LLM spec (a strong model, e.g. openai:gpt-4o)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder: annotations.json, summary.json, config.json, report.html (required when judging)."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="Judge only the first N instructions."),
    both_orders: bool = typer.Option(True, "--both-orders/--one-order", help="Judge each pair twice, answers swapped, so position bias cancels (a disagreement is a tie)."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", min=1, help="Tokens per generated answer (model or baseline spec)."),
    judge_max_new_tokens: int = typer.Option(512, "--judge-max-new-tokens", min=1, help="Tokens per verdict."),
    model_name: str = typer.Option(None, "--model-name", help="Name recorded as generator_2 (default: the outputs file's generator or the backend's model name)."),
    baseline_name: str = typer.Option(None, "--baseline-name", help="Name recorded as generator_1."),
    judge_mode: str = typer.Option("auto", "--judge-mode", help="text: the judge writes its verdict; logprob: the verdict is read from its probabilities (small local judges always give one); auto: logprob for local judges, text for servers."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object instead of a table."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars while answering and judging."),
):
    """Win rate against a baseline (ties count half) and its length-controlled version, from AlpacaEval annotations or by judging pairs with an LLM."""
    from notos.data.alpaca_eval import read_annotations
    from notos.evaluate.judged_winrate import run_judged
    from notos.evaluate.reports import write_winrate_folder
    from notos.evaluate.winrate import win_rate

    judging = [name for name, value in (("--instructions", instructions), ("--model", model), ("--model-outputs", model_outputs),
                                        ("--baseline", baseline), ("--judge", judge)) if value is not None]
    if annotations is not None:
        if judging:
            raise NotosError(f"--annotations takes figures from a file; it does not go with {', '.join(judging)}")
        rows = read_annotations(annotations)
        summary = win_rate(rows)
        if out is not None:
            write_winrate_folder(out, summary, {"kind": "winrate", "annotations": str(annotations)}, rows, save_annotations=False)
    else:
        missing = [option for option, value in (("--baseline", baseline), ("--judge", judge), ("--out", out)) if value is None]
        if model is None and model_outputs is None:
            missing.insert(0, "--model or --model-outputs")
        if missing:
            raise NotosError(f"give --annotations FILE, or judge with --model/--model-outputs, --baseline, --judge and --out (missing: {', '.join(missing)})")
        summary = run_judged(out, baseline=baseline, judge=judge, instructions=instructions, model=model,
                             model_outputs=model_outputs, limit=limit, both_orders=both_orders,
                             max_new_tokens=max_new_tokens, judge_max_new_tokens=judge_max_new_tokens,
                             model_name=model_name, baseline_name=baseline_name, progress=progress,
                             judge_mode=judge_mode)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        print_winrate(summary, out)


def print_winrate(summary: dict, out_dir: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    def pct(value):
        return "-" if value is None else f"{value:.2f}"

    table = Table(title=f"{summary['model']} vs {summary['baseline']}" + (f", judged by {summary['judge']}" if summary.get("judge") else ""),
                  title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("win rate (%)", pct(summary["win_rate"]))
    table.add_row("standard error", pct(summary["standard_error"]))
    table.add_row("length-controlled win rate (%)", pct(summary["length_controlled_win_rate"]))
    for key in ("n_wins", "n_wins_base", "n_draws", "n_total", "n_missing"):
        table.add_row(key, str(summary[key]))
    if summary.get("judge"):
        table.add_row("n_inconsistent (orders disagreed)", str(summary["n_inconsistent"]))
        table.add_row("n_verdicts_unreadable", str(summary["n_verdicts_unreadable"]))
    table.add_row("avg length, model / baseline", f"{summary['avg_length']:.0f} / {summary['avg_length_baseline']:.0f}")
    console = Console(soft_wrap=True)
    console.print(table)
    if summary.get("lc_note"):
        console.print(f"  length-controlled: {summary['lc_note']}")
    if out_dir is not None:
        console.print(f"  wrote {out_dir}/summary.json and {out_dir}/report.html")


def _default_harness_out(model: str) -> Path:
    return Path("runs") / f"harness-{_slug(model.rstrip('/').rsplit('/', 1)[-1])}"


@eval_app.command("harness")
def harness(
    model: str = typer.Option(..., "--model", help="A local model: a folder with a transformers model, a .gguf file, or `embedded`."),
    tasks: str = typer.Option(..., "--tasks", help="lm-eval task names, comma-separated (e.g. arc_easy,hellaswag), or tasks of --include-path."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: runs/harness-<model>): harness_results.json, samples_<task>.jsonl, summary.json, config.json, report.html."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="At most N examples per task (a smoke test, not a score)."),
    include_path: Path = typer.Option(None, "--include-path", help="A folder of extra task YAML files (custom tasks over local data)."),
    num_fewshot: int = typer.Option(None, "--num-fewshot", min=0, help="Few-shot examples per prompt (default: each task's own)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Requests per forward pass."),
    device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda when available)."),
    apply_chat_template: bool = typer.Option(False, "--apply-chat-template", help="Wrap prompts in the model's chat template (for chat models)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object instead of a table."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show lm-eval's progress bars."),
):
    """Run EleutherAI's LM Eval Harness (extra `eval`) on a local model and store its results."""
    from notos.evaluate.harness import print_harness, run_harness

    summary = run_harness(model, tasks, out or _default_harness_out(model), limit=limit, include_path=include_path,
                          num_fewshot=num_fewshot, batch_size=batch_size, device=device,
                          apply_chat_template=apply_chat_template, progress=progress)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        print_harness(summary)


@eval_app.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="An evaluation folder with summary.json (or a folder of them), e.g. the base model's."),
    run_b: Path = typer.Argument(..., help="The other one, e.g. the DPO model's; differences are B minus A."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write compare.json and report.html (with plots) here."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Compare runs with different judges, baselines or questions anyway (the caveats are printed and recorded)."),
):
    """Compare two models' evaluation runs: every figure both have, side by side, with the difference, its standard error and n.

    Runs judged differently (judge, baseline, question set) are refused unless --allow-mismatch."""
    from notos.evaluate.compare_runs import (
        compare_runs,
        print_comparison,
        write_comparison,
    )

    result = compare_runs(run_a, run_b, allow_mismatch=allow_mismatch)
    if out is not None:
        write_comparison(result, out)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_comparison(result)
        if out is not None:
            typer.echo(f"  wrote {out / 'compare.json'} and {out / 'report.html'}")
