"""The LM Eval Harness bridge: EleutherAI's lm-eval (extra `eval`) on a local model, its results
stored beside the other evaluation outputs.

    summary = run_harness("runs/dpo/model", "arc_easy,hellaswag", "runs/eval/harness", limit=100)

`model` is a folder with a transformers model, a `.gguf` file, or `embedded` (lm-eval's `hf`
model reads GGUF files itself). lm-eval is imported only here, when used. Its tasks fetch their
data from the Hugging Face Hub; offline, a task whose data is not cached fails before the model
loads, with one line naming the task. Custom tasks over local files (`dataset_path: json`,
`dataset_kwargs: {data_files: ...}`) come in with `include_path`.

The folder holds lm-eval's results (harness_results.json, without the per-example records),
the records per task (samples_<task>.jsonl), and notos's summary.json, config.json, report.html.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
from pathlib import Path

from notos.errors import NotosError, require_extra

OFFLINE_HINT = ("lm-eval tasks download their data from the Hugging Face Hub: run once with network access "
                "(the datasets cache keeps it) or use a local task YAML with --include-path")


def import_lm_eval():
    """lm_eval, or a one-line error saying which extra to install."""
    return require_extra("lm_eval", "eval")


def model_args(model: str) -> tuple[dict, str]:
    """(lm-eval `hf` model_args, a display name) for a local model folder, a .gguf file or `embedded`."""
    from notos.llms.embedded import EMBEDDED_NAME, embedded_gguf

    if model == "embedded":
        path = embedded_gguf()
        return {"pretrained": str(path.parent), "gguf_file": path.name}, EMBEDDED_NAME
    path = Path(model)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise NotosError(f"--model {model}: no such GGUF file")
        return {"pretrained": str(path.parent.resolve()), "gguf_file": path.name}, path.stem
    if not path.is_dir():
        raise NotosError(f"--model {model}: no such folder (give a local transformers model folder, a .gguf file or `embedded`)")
    if not (path / "config.json").is_file():
        raise NotosError(f"--model {model}: not a transformers model folder (no config.json)")
    return {"pretrained": str(path.resolve())}, path.resolve().name


def parse_tasks(tasks: str | list[str]) -> list[str]:
    names = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise NotosError("--tasks: no task names (e.g. --tasks arc_easy,hellaswag)")
    return names


def load_tasks(task_manager, names: list[str]) -> list:
    """Build every task before the model loads, so a task that cannot get its data fails fast,
    on one line that names it. Returns the built tasks and groups, for simple_evaluate."""
    built = []
    for name in names:
        if name not in task_manager.all_tasks and not Path(name).is_file():
            raise NotosError(f"--tasks {name}: no such lm-eval task (see `lm-eval ls tasks`; custom task YAML files come in with --include-path)")
        try:
            loaded = task_manager.load([name])
        except Exception as exc:  # noqa: BLE001 - datasets raise many kinds; each ends the run on one line
            hint = f"; {OFFLINE_HINT}" if _looks_offline(exc) else ""
            raise NotosError(f"--tasks {name}: cannot load its data: {type(exc).__name__}: {_first_line(exc)}{hint}") from None
        groups, tasks = loaded.get("groups") or {}, loaded.get("tasks") or {}
        built += [groups[name]] if name in groups else [tasks[name]] if name in tasks else list(tasks.values())
    return built


def _looks_offline(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return isinstance(exc, ConnectionError) or any(w in text for w in ("Offline", "offline", "Couldn't reach", "resolve", "Hub"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


@contextlib.contextmanager
def _quiet(progress: bool):
    """lm-eval, datasets and transformers log at INFO/WARNING and draw tqdm bars on stderr.
    Keep their logs to errors; keep the bars only on a terminal, when wanted. lm-eval passes
    tqdm an explicit `disable`, so the one switch that reaches every bar is where they write."""
    loggers = [logging.getLogger(name) for name in ("lm_eval", "lm-eval", "datasets", "huggingface_hub", "transformers", "evaluate")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        if progress and sys.stderr.isatty():
            yield
        else:
            with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
                yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def run_harness(model: str, tasks: str | list[str], out_dir, *, limit: int | None = None, include_path=None,
                num_fewshot: int | None = None, batch_size: int = 8, device: str | None = None,
                apply_chat_template: bool = False, progress: bool = True) -> dict:
    """Run lm-eval's `simple_evaluate` with the `hf` model; write the folder; return summary.json's content."""
    names = parse_tasks(tasks)
    args, display = model_args(model)
    if include_path is not None and not Path(include_path).exists():
        raise NotosError(f"--include-path {include_path}: no such folder")
    lm_eval = import_lm_eval()
    from lm_eval.tasks import TaskManager

    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    with _quiet(progress):
        task_manager = TaskManager(include_path=str(include_path) if include_path else None)  # its logs: _quiet()
        built = load_tasks(task_manager, names)
        try:
            results = lm_eval.simple_evaluate(
                model="hf", model_args={**args, "device": device}, tasks=built, task_manager=task_manager,
                limit=limit, num_fewshot=num_fewshot, batch_size=batch_size, log_samples=True,
                apply_chat_template=apply_chat_template, verbosity="ERROR")
        except (OSError, ValueError, RuntimeError) as exc:  # a model lm-eval cannot load or run
            raise NotosError(f"lm-eval on --model {model}: {type(exc).__name__}: {_first_line(exc)}") from None
    if not results:
        raise NotosError("lm-eval returned no results")
    config = {"kind": "harness", "model": model, "model_args": args, "tasks": names, "limit": limit,
              "include_path": str(include_path) if include_path else None, "num_fewshot": num_fewshot,
              "batch_size": batch_size, "device": device, "apply_chat_template": apply_chat_template,
              "lm_eval_version": getattr(lm_eval, "__version__", None)}
    summary = summarize(results, display, names)
    write_harness_folder(out_dir, results, summary, config)
    return summary


def summarize(results: dict, model_name: str, names: list[str]) -> dict:
    """Numeric metrics per task, named `acc`, `acc_stderr` (filter `none`) or `acc_<filter>`."""
    figures = {}
    for task, metrics in (results.get("results") or {}).items():
        row = {}
        for key, value in metrics.items():
            metric, _, filt = key.partition(",")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and filt:
                row[metric if filt == "none" else f"{metric}_{filt}"] = value
        figures[task] = row
    samples = {task: info.get("effective") for task, info in (results.get("n-samples") or {}).items()}
    return {"kind": "harness", "model": model_name, "tasks": names, "results": figures, "n_samples": samples}


def write_harness_folder(out_dir, results: dict, summary: dict, config: dict) -> Path:
    from notos.data.atomic import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = results.get("samples") or {}
    kept = {k: v for k, v in results.items() if k != "samples"}
    write_json(out_dir / "harness_results.json", kept, default=_jsonable)
    for task, records in samples.items():
        with open(out_dir / f"samples_{task}.jsonl", "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n")
    write_json(out_dir / "summary.json", summary)
    write_json(out_dir / "config.json", config)
    _write_report(out_dir, summary)
    return out_dir


def _jsonable(value):
    # lm-eval's results hold numpy numbers, functions (in task configs) and sets.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _write_report(out_dir: Path, summary: dict) -> Path:
    from notos.report.html import table_html, write_report

    rows = [{"task": task, "metric": metric, "value": value, "examples": summary["n_samples"].get(task)}
            for task, metrics in summary["results"].items() for metric, value in metrics.items()]
    note = "<p>Results of EleutherAI's LM Eval Harness; lm-eval's own output is harness_results.json, one record per example in samples_&lt;task&gt;.jsonl.</p>"
    return write_report(out_dir, f"LM Eval Harness: {summary['model']}", [note, table_html(rows, ["task", "metric", "value", "examples"], limit=500)])


def print_harness(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"LM Eval Harness: {summary['model']}", title_justify="left")
    for column in ("task", "metric", "value", "examples"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for task, metrics in summary["results"].items():
        for metric, value in metrics.items():
            table.add_row(task, metric, f"{value:.4f}", str(summary["n_samples"].get(task, "")))
    Console(soft_wrap=True).print(table)
