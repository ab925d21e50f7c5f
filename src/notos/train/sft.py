"""`notos train sft`: TRL's SFTTrainer from an SFTRecipe (full, LoRA or QLoRA; packing; loss on
the assistant's replies only).

Loss on the replies: conversations (`messages`) use TRL's `assistant_only_loss`, which needs a
chat template with `{% generation %}` markers; the tokenizer gets the marked twin of its own
template (templates.py), which renders the same text. prompt/completion data uses TRL's
`completion_only_loss`.
"""

from __future__ import annotations

from pathlib import Path

from notos.train import outputs
from notos.train.args import peft_config, training_args
from notos.train.config import SFTRecipe
from notos.train.data import sft_rows
from notos.train.models import load_model, load_tokenizer
from notos.train.shared import begin, fit, prepare_kbit


def run_sft(r: SFTRecipe, out: Path) -> dict:
    hw, train, held, model_path, resume = begin(r, out, sft_rows)

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from notos.train.templates import training_template

    tokenizer = load_tokenizer(model_path, r.chat_template)
    conversations = "messages" in train[0]
    replies_only = r.loss_on == "assistant"
    if replies_only and conversations:
        tokenizer.chat_template = training_template(tokenizer) or tokenizer.chat_template
    model = prepare_kbit(load_model(model_path, dtype=hw.load_dtype, quantize_4bit=r.method == "qlora"), r)
    args = SFTConfig(
        **training_args(r, out, hw, bool(held)),
        packing=r.packing,
        assistant_only_loss=replies_only and conversations,
        completion_only_loss=replies_only and not conversations,
    )
    trainer = SFTTrainer(
        model=model, args=args, processing_class=tokenizer,
        train_dataset=Dataset.from_list(train), eval_dataset=Dataset.from_list(held) if held else None,
        peft_config=peft_config(r), callbacks=[outputs.metrics_callback(out)],
    )
    return outputs.finish(trainer, out, r, fit(trainer, resume))
