"""`notos train rm`: a Bradley-Terry reward model (TRL's RewardTrainer) on (chosen, rejected)
pairs, the UltraRM role. A share of the pairs (`eval_fraction`, default 0.2) is held out, and
the pairwise accuracy on it (chosen scored above rejected) is the headline figure.

The model is the starting LM with a one-output score head (`AutoModelForSequenceClassification`,
num_labels 1). With LoRA the head is trained in full (PEFT's SEQ_CLS task saves `score`).
Score responses with it in a pipeline: `reward_step.reward_score`.
"""

from __future__ import annotations

from pathlib import Path

from notos.train import outputs
from notos.train.args import peft_config, training_args
from notos.train.config import RMRecipe
from notos.train.models import load_model, load_tokenizer
from notos.train.shared import begin, fit, prepare_kbit


def run_rm(r: RMRecipe, out: Path) -> dict:
    hw, train, held, model_path, resume = begin(r, out)

    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    tokenizer = load_tokenizer(model_path, r.chat_template)
    model = load_model(model_path, dtype=hw.load_dtype, quantize_4bit=r.method == "qlora", head="score")
    model = prepare_kbit(model, r)
    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    args = RewardConfig(**training_args(r, out, hw, bool(held)),
                        center_rewards_coefficient=r.center_rewards_coefficient)
    trainer = RewardTrainer(
        model=model, args=args, processing_class=tokenizer,
        train_dataset=Dataset.from_list(train), eval_dataset=Dataset.from_list(held) if held else None,
        peft_config=peft_config(r, task_type="SEQ_CLS"), callbacks=[outputs.metrics_callback(out)],
    )
    summary = fit(trainer, resume)
    if held:
        summary["heldout_pairs"] = len(held)
        summary["heldout_accuracy"] = summary.get("eval_accuracy")
    return outputs.finish(trainer, out, r, summary)
