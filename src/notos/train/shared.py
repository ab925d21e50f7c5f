"""What every trainer (sft.py, dpo.py, reward.py) does around its TRL trainer: `begin` before
building it, `prepare_kbit` on a QLoRA model, `fit` to train (or resume) and evaluate.

run.py picks the trainer; the trainers import this, never run.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from notos.errors import NotosError
from notos.train.config import Common


def begin(r: Common, out: Path, read_rows=None):
    """What every trainer does first: check the method and the hardware, read and split the data,
    resolve the model and open (or resume) the output folder. -> (hw, train, held, model_path, resume)"""
    from notos.train import outputs
    from notos.train.args import check_method, hardware
    from notos.train.data import train_and_held_out
    from notos.train.models import resolve_model

    check_method(r)
    hw = hardware(r)
    need_data(r)
    train, held = train_and_held_out(r, read_rows)
    model_path = resolve_model(r.model)
    return hw, train, held, model_path, outputs.start(out, r, model_path)


def need_data(r: Common) -> None:
    if not r.data:
        what = "preference pairs (prompt, chosen, rejected)" if r.kind in ("dpo", "rm") else "conversations (messages)"
        raise NotosError(f"this {r.kind} recipe names no data: pass --data PATH ({what}, Parquet or JSONL)")


def prepare_kbit(model, r: Common):
    """QLoRA: the 4-bit base gets PEFT's usual preparation (norms in fp32, input grads)."""
    if r.method != "qlora":
        return model
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=r.gradient_checkpointing)


FINAL_KEYS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "accuracy",
              "margin", "mean_token_accuracy", "num_tokens")


def fit(trainer, resume: str | None) -> dict:
    """Train (from the last checkpoint when there is one), then evaluate on the held-out data."""
    if len(trainer.train_dataset) == 0:  # TRL drops what does not fit; say so instead of a sampler error
        raise NotosError(f"no training example fits in max_length={trainer.args.max_length} tokens; raise max_length")
    from notos.train.progress import use_progress_bar

    use_progress_bar(trainer)
    summary = {"resumed_from": Path(resume).name if resume else None, "train_seconds": 0.0, "train_loss": None,
               "train_rows": len(trainer.train_dataset),
               "eval_rows": len(trainer.eval_dataset) if trainer.eval_dataset is not None else None}
    if resume and _all_steps_done(trainer, resume):
        # A finished run rerun: transformers would still take one more step when its last
        # checkpoint is mid-epoch, so the checkpoint is loaded as it is and nothing is trained.
        from transformers import TrainerState

        trainer._load_from_checkpoint(resume)
        trainer.state = TrainerState.load_from_json(str(Path(resume) / "trainer_state.json"))
    else:
        result = trainer.train(resume_from_checkpoint=resume)
        summary.update(train_seconds=round(result.metrics.get("train_runtime", 0.0), 2), train_loss=result.training_loss)
    last = {}
    for entry in trainer.state.log_history:
        last.update({k: v for k, v in entry.items() if k in FINAL_KEYS})
    summary.update({f"final_{k}": v for k, v in last.items()})
    if trainer.eval_dataset is not None:
        done = [e for e in trainer.state.log_history if "eval_loss" in e and e.get("step") == trainer.state.global_step]
        summary.update({k: v for k, v in done[-1].items() if k.startswith("eval_")} if done else trainer.evaluate())
    return summary


def _all_steps_done(trainer, checkpoint: str) -> bool:
    """Has the checkpoint reached the step count this run plans (as transformers counts it)?"""
    args = trainer.args
    planned = args.max_steps
    if planned <= 0:
        per_epoch = max(len(trainer.get_train_dataloader()) // args.gradient_accumulation_steps, 1)
        planned = math.ceil(args.num_train_epochs * per_epoch)
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    return state.get("global_step", 0) >= planned
