"""What every trainer shares: device and precision, TRL's common arguments, the LoRA config.

Every value TRL would otherwise default is set here from the recipe: trl 1.16 turns bf16 and
gradient checkpointing on and sets lr 1e-6 unless told, which is wrong on a CPU and surprising
anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from notos.errors import NotosError
from notos.train.config import Common


@dataclass
class Hardware:
    device: str  # cpu | cuda
    precision: str  # bf16 | fp16 | fp32

    @property
    def load_dtype(self):
        """Weights in bf16 on a bf16 GPU (as the alignment handbook trains); fp32 elsewhere, with
        autocast doing the mixed precision."""
        import torch

        return torch.bfloat16 if self.device == "cuda" and self.precision == "bf16" else torch.float32


def hardware(r: Common) -> Hardware:
    import torch

    cuda = torch.cuda.is_available()
    device = r.device if r.device != "auto" else ("cuda" if cuda else "cpu")
    if device == "cuda" and not cuda:
        raise NotosError("device: cuda asked for, but torch sees no CUDA GPU (use device: auto or cpu)")
    precision = r.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device == "cuda" else "fp32"
    if precision == "fp16" and device == "cpu":
        raise NotosError("precision: fp16 needs a GPU; on CPU use fp32 or bf16")
    if device == "cpu":
        from notos.llms.hf_local import default_threads

        torch.set_num_threads(r.threads or default_threads())
    return Hardware(device, precision)


def training_args(r: Common, out: Path, hw: Hardware, has_eval: bool) -> dict:
    """Keyword arguments every TRL config (SFTConfig, DPOConfig, RewardConfig) takes."""
    eval_every = max(r.save_steps, r.logging_steps)
    return {
        **({"optim": r.optimizer} if r.optimizer else {}),
        "output_dir": str(out / "checkpoints"),
        "learning_rate": r.learning_rate,
        "num_train_epochs": r.epochs,
        "max_steps": r.max_steps,
        "per_device_train_batch_size": r.batch_size,
        "per_device_eval_batch_size": r.batch_size,
        "gradient_accumulation_steps": r.gradient_accumulation_steps,
        "lr_scheduler_type": r.lr_scheduler,
        **warmup(r.warmup_ratio),
        "weight_decay": r.weight_decay,
        "seed": r.seed,
        "max_length": r.max_length,
        "use_cpu": hw.device == "cpu",
        "bf16": hw.precision == "bf16",
        "fp16": hw.precision == "fp16",
        **checkpointing(r.gradient_checkpointing),
        "logging_steps": r.logging_steps,
        "save_strategy": "steps",
        "save_steps": r.save_steps,
        "save_total_limit": r.save_total_limit,
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": eval_every if has_eval else None,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def _training_fields() -> set[str]:
    import dataclasses

    from transformers import TrainingArguments

    return {f.name for f in dataclasses.fields(TrainingArguments)}


def warmup(ratio: float) -> dict:
    # transformers 5 takes a ratio as a float warmup_steps in [0, 1); 4.x has warmup_ratio.
    return {"warmup_ratio": ratio} if "warmup_ratio" in _training_fields() else {"warmup_steps": ratio}


def checkpointing(on: bool) -> dict:
    """transformers 5 renamed gradient_checkpointing to activation_checkpointing; TRL's configs
    still default the old name to True, so both are set (the new one wins where it exists)."""
    new = {"activation_checkpointing": on} if "activation_checkpointing" in _training_fields() else {}
    return {"gradient_checkpointing": on, **new}


def peft_config(r: Common, task_type: str = "CAUSAL_LM"):
    if r.method == "full":
        return None
    from peft import LoraConfig

    return LoraConfig(r=r.lora_r, lora_alpha=r.lora_alpha, lora_dropout=r.lora_dropout, bias="none",
                      target_modules=r.lora_target_modules, task_type=task_type)


def check_method(r: Common) -> None:
    if r.method == "qlora":
        from notos.train.models import check_qlora_possible

        check_qlora_possible()
