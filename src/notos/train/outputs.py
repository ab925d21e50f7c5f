"""The output folder of a training run, and resuming one.

    OUT/
      model/            the adapter (adapter_model.safetensors) or the full model, + tokenizer, and
                        README.md: the model card (card.py); the adapter names its base by Hub id
      merged/           with `merge: true`: the adapter folded into the base model, in bf16 unless
                        `merged_dtype` says otherwise, with its own card
      checkpoints/      TRL's checkpoints; a rerun on the same folder resumes from the last
      config.yaml       the resolved recipe
      metrics.jsonl     one line per log step (loss, rewards/..., eval_...)
      report.html       the curves and the final figures
      notos-train.json  written last: kind, steps, final metrics (a finished run)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import yaml

from notos.errors import NotosError
from notos.train.card import base_model_id, yaml_mapping
from notos.train.config import Common
from notos.train.models import RUN_MARKER


def check_out(out: Path) -> None:
    """Before anything is loaded or written: OUT must be new, empty, or an earlier output of
    notos train (a rerun resumes it), and writable; anything else is a one-line error naming
    --out, and nothing is written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotosError(f"--out {out}: is a file, not a folder; choose a folder")
    if out.is_dir():
        if any(out.iterdir()) and not is_train_output(out):
            raise NotosError(f"--out {out}: exists and is not an output of notos train; choose another folder")
        existing = out
    else:
        existing = next(p for p in out.absolute().parents if p.exists())
        if not existing.is_dir():
            raise NotosError(f"--out {out}: {existing} is a file, not a folder; choose another place")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NotosError(f"--out {out}: {existing} is not writable; choose another folder")


def is_train_output(folder: Path) -> bool:
    """A folder notos train wrote: finished (its marker), begun (config.yaml with the resolved
    model, written first), or a staged run (recipe.yaml with its stages, written first)."""
    if (folder / RUN_MARKER).is_file():
        return True
    config = yaml_mapping(folder / "config.yaml")
    if "kind" in config and "resolved_model" in config:
        return True
    return "stages" in yaml_mapping(folder / "recipe.yaml")


def start(out: Path, recipe: Common, model_path: str) -> str | None:
    """Write config.yaml; return the checkpoint to resume from, if any."""
    out.mkdir(parents=True, exist_ok=True)
    config = {**asdict(recipe), "resolved_model": model_path, "base_model": base_model_id(recipe.model)}
    if os.environ.get("RANK", "0") == "0":  # one writer under `accelerate launch`
        (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return last_complete_checkpoint(out / "checkpoints")


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """The newest checkpoint a kill did not cut short: the trainer writes trainer_state.json last,
    so a folder without it is half-written and resuming from it would crash."""
    if not checkpoints.is_dir():
        return None
    complete = [p for p in checkpoints.glob("checkpoint-*")
                if p.name.rsplit("-", 1)[1].isdigit() and (p / "trainer_state.json").is_file()]
    return str(max(complete, key=lambda p: int(p.name.rsplit("-", 1)[1]))) if complete else None


def metrics_callback(out: Path):
    """Appends each log line to metrics.jsonl as it comes (visible while training runs)."""
    from transformers import TrainerCallback

    path = out / "metrics.jsonl"

    class WriteMetrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                with path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")

    return WriteMetrics()


def finish(trainer, out: Path, recipe: Common, summary: dict) -> dict:
    """Save the model and tokenizer, rewrite metrics.jsonl from the full log history (a resumed
    run's too, without repeats), merge on request, write the report and the marker."""
    model_dir = out / "model"
    trainer.save_model(str(model_dir))  # every process: under ZeRO-3 the weights are gathered
    if not trainer.is_world_process_zero():
        return summary
    trainer.processing_class.save_pretrained(str(model_dir))
    history = [dict(entry) for entry in trainer.state.log_history]
    with (out / "metrics.jsonl").open("w", encoding="utf-8") as f:
        for entry in history:
            f.write(json.dumps(entry) + "\n")
    summary = {"kind": recipe.kind, "steps": trainer.state.global_step, **summary}
    from notos.train import card

    base_id = card.base_model_id(recipe.model)
    if not is_train_output(Path(recipe.model)):  # a later stage's base is the stage before: its path stays
        card.publishable_adapter(model_dir, base_id)
    card.write_card(model_dir, recipe, summary, base_id, merged=False)
    if recipe.merge:
        dtype = merged_dtype(recipe, trainer.args)
        merge_into(trainer, out / "merged", dtype)
        card.write_card(out / "merged", recipe, summary, base_id, merged=True, dtype=str(dtype).removeprefix("torch."))
    from notos.train.report import write_training_report

    write_training_report(out, recipe, history, summary)
    (out / RUN_MARKER).write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    return summary


def merged_dtype(recipe: Common, args):
    """The dtype merged/ is saved in: the recipe's, or on `auto` the training precision when it
    is a half one, else bf16 (what checkpoints are published in; fp32 doubles the download)."""
    import torch

    choice = recipe.merged_dtype
    if choice == "auto":
        choice = "fp16" if args.fp16 else "bf16"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[choice]


def merge_into(trainer, target: Path, dtype) -> None:
    from peft import PeftModel

    from notos.train.models import merge_adapter

    model = trainer.accelerator.unwrap_model(trainer.model)
    if not isinstance(model, PeftModel):  # a full fine-tune is its own merged model
        model.to(dtype).save_pretrained(str(target), safe_serialization=True)  # training is over: cast in place
        trainer.processing_class.save_pretrained(str(target))
        return
    merge_adapter(target.parent / "model", target, dtype)
