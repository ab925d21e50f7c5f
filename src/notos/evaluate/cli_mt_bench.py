"""`notos eval mt-bench` and `notos eval compare`: thin over mt_bench.py and compare_runs.py."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from notos.evaluate.app import eval_app


def _default_out(model_name: str | None, model: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name or model.rstrip("/").rsplit("/", 1)[-1]).strip("-.") or "model"
    return Path("runs") / f"mt-bench-{slug}"


@eval_app.command("mt-bench")
def mt_bench(
    model: str = typer.Option(..., "--model", help="The model to evaluate (an LLM spec: embedded, openai:MODEL, http://HOST/v1, transformers:PATH, vllm:PATH ...)."),
    judge: str = typer.Option(..., "--judge", help="The judge model (an LLM spec); a strong one, e.g. openai:gpt-4o."),
    questions: Path = typer.Option(..., "--questions", help="MT-Bench questions: FastChat's fastchat/llm_judge/data/mt_bench/question.jsonl (question_id, category, turns) - not shipped with notos."),
    references: Path = typer.Option(None, "--references", help="Reference answers (question_id, choices[0].turns), e.g. FastChat's reference_answer/gpt-4.jsonl; shown to the judge for math, reasoning and coding."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: runs/mt-bench-<model>). Rerun on the same folder to resume."),
    question_ids: str = typer.Option(None, "--question-ids", help="Only these questions, e.g. 81,82,116."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="At most this many questions (after --question-ids)."),
    max_new_tokens: int = typer.Option(1024, "--max-new-tokens", min=1, help="Tokens per answer turn (FastChat: 1024)."),
    judge_max_new_tokens: int = typer.Option(2048, "--judge-max-new-tokens", min=1, help="Tokens per verdict (FastChat: 2048)."),
    model_name: str = typer.Option(None, "--model-name", help="Name recorded as model_id (default: the backend's model name)."),
    judge_mode: str = typer.Option("auto", "--judge-mode", help="text: the judge writes its verdict; logprob: the verdict is read from its probabilities (small local judges always give one); auto: logprob for local judges, text for servers."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars for answering and judging."),
):
    """MT-Bench: answer both turns of each question, grade each turn 1-10 with the judge, report the means."""
    from notos.evaluate.mt_bench import print_summary, run_mt_bench

    out_dir = out or _default_out(model_name, model)
    summary = run_mt_bench(model, judge, questions, out_dir, references=references, question_ids=question_ids,
                           limit=limit, max_new_tokens=max_new_tokens, judge_max_new_tokens=judge_max_new_tokens,
                           model_name=model_name, progress=progress, judge_mode=judge_mode)
    print_summary(summary, out_dir)


@eval_app.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="An evaluation folder with summary.json (or a folder of them), e.g. the base model's."),
    run_b: Path = typer.Argument(..., help="The other one, e.g. the DPO model's; differences are B minus A."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write compare.json and report.html (with plots) here."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
):
    """Compare two models' evaluation runs: every figure both have, side by side, with the difference."""
    from notos.evaluate.compare_runs import compare_runs, print_comparison, write_comparison

    result = compare_runs(run_a, run_b)
    if out is not None:
        write_comparison(result, out)
    if as_json:
        import json

        typer.echo(json.dumps(result, indent=2))
    else:
        print_comparison(result)
        if out is not None:
            typer.echo(f"  wrote {out / 'compare.json'} and {out / 'report.html'}")
