"""The recipe schemas: one dataclass per trainer. A field is a recipe key; its default is what
a recipe that says nothing gets. YAML and `--set key=value` only ever set these fields.

Defaults are the laptop ones (the embedded model, LoRA, fp32 on CPU); the shipped GPU recipes
set the seeds' values explicitly, so nothing depends on TRL's own defaults (bf16 and gradient
checkpointing on, lr 1e-6), which change between releases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

METHODS = ("full", "lora", "qlora")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
MERGED_DTYPES = PRECISIONS
DEVICES = ("auto", "cpu", "cuda")
REFERENCES = ("implicit", "explicit", "precomputed")
LOSS_ON = ("assistant", "all")
PATH_KEYS = ("data", "eval_data", "ref_cache_dir", "accelerate_config")


@dataclass
class Common:
    kind: str = ""
    description: str = ""
    # Model and data
    model: str = "embedded"  # `embedded`, a hub id, a local folder, or a `notos train` output folder
    chat_template: str | None = None  # None: the tokenizer's; `zephyr`, `chatml` or a Jinja string
    data: str | None = None  # file or folder (Parquet / JSONL), or hf://owner/name
    data_split: str | None = None  # for hf:// data
    text_as_chat: bool = True  # plain-text prompt / reply -> a user turn / an assistant turn
    eval_data: str | None = None
    eval_split: str | None = None  # for hf:// eval data
    eval_fraction: float = 0.0  # held out of `data` for evaluation when there is no eval_data
    limit: int | None = None  # use at most this many rows of `data`
    # Adapter
    method: str = "lora"  # full | lora | qlora (4-bit, CUDA + bitsandbytes)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "v_proj"])
    # Optimisation
    learning_rate: float = 5e-5
    epochs: float = 1.0
    max_steps: int = -1  # > 0 wins over epochs
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    optimizer: str | None = None  # None: transformers' default (fused AdamW on torch >= 2.8)
    max_length: int = 1024
    seed: int = 42
    # Hardware
    device: str = "auto"  # auto: CUDA when there is one
    precision: str = "auto"  # auto: bf16 on a GPU that has it, fp16 on one that does not, fp32 on CPU
    gradient_checkpointing: bool = False
    threads: int | None = None  # CPU threads (default: half the cores, at most 8: a busy shared CPU collapses more)
    accelerate_config: str | None = None  # for `accelerate launch`; see src/notos/recipes/accelerate/
    # Output
    logging_steps: int = 1
    save_steps: int = 50
    save_total_limit: int = 2
    merge: bool = False  # also write merged/: the adapter folded into the base model
    merged_dtype: str = "auto"  # of merged/: auto = the training precision on a GPU (bf16 / fp16), else bf16


@dataclass
class SFTRecipe(Common):
    kind: str = "sft"
    learning_rate: float = 2e-4
    packing: bool = False
    loss_on: str = "assistant"  # assistant replies only (messages) / the completion (prompt+completion) | all


@dataclass
class DPORecipe(Common):
    kind: str = "dpo"
    learning_rate: float = 5e-6
    beta: float = 0.1
    loss_type: str | list[str] = "sigmoid"  # any of TRL's DPO losses, or a list of them
    loss_weights: list[float] | None = None
    label_smoothing: float = 0.0
    reference: str = "implicit"  # implicit (LoRA: adapter off) | explicit (ref_model) | precomputed
    ref_model: str | None = None  # explicit reference; default: the starting model
    max_prompt_length: int | None = None  # prompts are cut from the left to this many tokens
    precompute_batch_size: int | None = None
    ref_cache_dir: str | None = None  # precomputed log-probs; default: beside the data


@dataclass
class RMRecipe(Common):
    kind: str = "rm"
    learning_rate: float = 1e-4
    eval_fraction: float = 0.2
    center_rewards_coefficient: float | None = None


RECIPE_TYPES = {"sft": SFTRecipe, "dpo": DPORecipe, "rm": RMRecipe}
