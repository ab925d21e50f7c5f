"""`notos train dpo`: TRL's DPOTrainer from a DPORecipe.

The reference model is one of:
- implicit: LoRA/QLoRA with `ref_model=None`; TRL switches the adapter off for the reference.
- explicit: a second model in memory (`ref_model`, default the starting model).
- precomputed: one pass of the reference over the data before training (TRL's
  `precompute_ref_log_probs`), kept beside the data so reruns skip it (dpo_trainer.py).
"""

from __future__ import annotations

from pathlib import Path

from notos.shipped import RECIPE_DATA
from notos.train import outputs
from notos.train.args import peft_config, training_args
from notos.train.config import DPORecipe
from notos.train.models import cache_root, load_model, load_tokenizer, resolve_model
from notos.train.shared import begin, fit, prepare_kbit


def run_dpo(r: DPORecipe, out: Path) -> dict:
    hw, train, held, model_path, resume = begin(r, out)

    from datasets import Dataset
    from trl import DPOConfig

    from notos.train.dpo_trainer import notos_dpo_trainer

    tokenizer = load_tokenizer(model_path, r.chat_template)
    model = prepare_kbit(load_model(model_path, dtype=hw.load_dtype, quantize_4bit=r.method == "qlora"), r)
    ref_model = None
    if r.reference == "explicit":
        ref_model = load_model(resolve_model(r.ref_model or r.model), dtype=hw.load_dtype,
                               quantize_4bit=r.method == "qlora")
    args = DPOConfig(
        **training_args(r, out, hw, bool(held)),
        beta=r.beta,
        loss_type=[r.loss_type] if isinstance(r.loss_type, str) else list(r.loss_type),
        loss_weights=r.loss_weights,
        label_smoothing=r.label_smoothing,
        precompute_ref_log_probs=r.reference == "precomputed",
        precompute_ref_batch_size=r.precompute_batch_size,
    )
    trainer = notos_dpo_trainer(
        model=model, ref_model=ref_model, args=args, processing_class=tokenizer,
        train_dataset=Dataset.from_list(train), eval_dataset=Dataset.from_list(held) if held else None,
        peft_config=peft_config(r), callbacks=[outputs.metrics_callback(out)],
        max_prompt_length=r.max_prompt_length,
        ref_cache_dir=ref_cache_dir(r) if r.reference == "precomputed" else None,
    )
    summary = fit(trainer, resume)
    if trainer.notos_ref_logps:
        summary["ref_logps"], summary["ref_logps_file"] = trainer.notos_ref_logps
    return outputs.finish(trainer, out, r, summary)


def ref_cache_dir(r: DPORecipe) -> Path:
    """Beside the data (a hidden folder the data readers skip); the notos cache for hub data and
    for the data shipped inside the package."""
    if r.ref_cache_dir:
        return Path(r.ref_cache_dir)
    data = Path(r.data)
    if r.data.startswith("hf://") or data.resolve().is_relative_to(RECIPE_DATA):
        return cache_root() / "ref-logps"
    return (data if data.is_dir() else data.parent) / ".notos-ref-logps"
