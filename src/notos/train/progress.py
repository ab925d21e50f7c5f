"""What a training run shows on the terminal: one progress bar (steps, ETA, the last loss)
instead of transformers' dict per logging step, and none of the libraries' chatter.

    with quiet_libraries():
        trainer = ...
        use_progress_bar(trainer)     # swaps transformers' printer for the bar
        trainer.train()

On a terminal the bar redraws in place; piped into a file or a CI log it is one short line per
tenth of the run (a bar redrawn into a log is noise). Evaluations print one line each.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings

# Deprecations inside transformers, TRL and PEFT (`past_key_values` as a tuple,
# `is_gradient_checkpointing`, renamed arguments TRL still passes): nothing a user can act on.
LIBRARIES = r"(transformers|trl|peft|accelerate|datasets)(\.|$)"
LOSS_KEYS = ("loss", "eval_loss")
SHOWN = ("rewards/accuracies", "rewards/margins", "accuracy", "mean_token_accuracy")
NAMES = {"rewards/accuracies": "reward acc", "rewards/margins": "margin", "mean_token_accuracy": "token acc"}


@contextlib.contextmanager
def quiet_libraries():
    """No FutureWarnings from the training libraries, no `datasets` progress bars (tokenizing a
    few rows draws three), no weight-loading bars. Restored afterwards."""
    import datasets
    import transformers

    bars_were_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    transformers.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=LIBRARIES)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=LIBRARIES)
            yield
    finally:
        if not bars_were_off:
            datasets.enable_progress_bars()
        transformers.logging.enable_progress_bar()


def use_progress_bar(trainer, label: str = "training") -> None:
    """Replace transformers' per-step dict printer (or its tqdm bar) with ours."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(progress_callback(label))


def progress_callback(label: str, stream=None, interactive: bool | None = None):
    from transformers import TrainerCallback

    class TrainingProgress(TrainerCallback):
        """Steps done / planned, elapsed, ETA and the last loss; eval results as lines."""

        def __init__(self):
            self.view = None
            self.stream = stream or sys.stderr
            self.interactive = self.stream.isatty() if interactive is None else interactive
            self.figures: dict = {}
            self.started = self.first_step = self.pending = None
            self.next_line = 0

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            self.started, self.first_step = time.monotonic(), state.global_step
            self.next_line = state.global_step
            if self.interactive:
                self.view = _rich_bar(self.stream, label, state.max_steps, state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            if self.view is not None:
                progress, task = self.view
                progress.update(task, completed=state.global_step, figures=_figures_text(self.figures))
                return
            if self.pending:  # no log came for the step before: its line without new figures
                self._line(state, self.pending)
            if state.global_step >= self.next_line or state.global_step == state.max_steps:
                self.pending = state.global_step  # printed by on_log, which brings this step's loss
                self.next_line = state.global_step + max(1, state.max_steps // 10)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if "eval_loss" in logs:
                text = _figures_text({k.removeprefix("eval_"): v for k, v in logs.items() if k.startswith("eval_")})
                self._print(f"  eval at step {state.global_step}: {text}")
            elif "loss" in logs:
                self.figures.update({k: v for k, v in logs.items() if k in ("loss", *SHOWN)})
                if self.view is not None:
                    self.view[0].update(self.view[1], figures=_figures_text(self.figures))
                elif self.pending:
                    self._line(state, self.pending)

        def on_train_end(self, args, state, control, **kwargs):
            if self.pending:
                self._line(state, self.pending)
            if self.view is not None:
                self.view[0].stop()
                self.view = None

        def _line(self, state, step: int):
            self.pending = None
            done = step - self.first_step
            elapsed = time.monotonic() - self.started
            left = (state.max_steps - step) * elapsed / done if done else None
            eta = f", ETA {_clock(left)}" if left is not None and step < state.max_steps else ""
            figures = _figures_text(self.figures)
            self._print(f"  {label}: step {step}/{state.max_steps}, {_clock(elapsed)}{eta}"
                        + (f", {figures}" if figures else ""))

        def _print(self, text: str):
            if self.view is not None:
                self.view[0].console.print(text, highlight=False, markup=False)
            else:
                print(text, file=self.stream, flush=True)

    return TrainingProgress()


def _rich_bar(stream, label: str, total: int, done: int):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[figures]}"),
                        console=Console(file=stream), transient=False)
    task = progress.add_task(label, total=total, completed=done, figures="")
    progress.start()
    return progress, task


def _figures_text(figures: dict) -> str:
    """loss 0.61, reward acc 1, margin 0.18 (DPO); token acc for SFT, whose loss is all it has."""
    preference = any(k.startswith("rewards/") for k in figures)
    shown = [k for k in ("loss", *SHOWN) if k in figures and not (preference and k == "mean_token_accuracy")]
    return ", ".join(f"{NAMES.get(k, k)} {figures[k]:.4g}" for k in shown if isinstance(figures[k], (int, float)))


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
