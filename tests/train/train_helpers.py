"""Helpers for the training tests: run a recipe in-process (one torch import for the whole
suite), and score replies with our own code to check what training did to the model."""

from __future__ import annotations

import json
from pathlib import Path

from notos.train.recipes import load_recipe
from notos.train.run import run_recipe

DATA = Path(__file__).resolve().parents[2] / "src" / "notos" / "recipes" / "data"
PAIRS = DATA / "quickstart_pairs.jsonl"
CONVERSATIONS = DATA / "quickstart_sft.jsonl"
# Small enough for a shared 2-core CPU: a step of these takes a second or two.
TINY = ["max_steps=1", "batch_size=1", "gradient_accumulation_steps=1", "max_length=48", "limit=2", "eval_fraction=0", "save_steps=10",
        "model=embedded"]


def train(recipe: str, out: Path, *sets: str, data: str | None = None) -> list[dict]:
    return run_recipe(load_recipe(recipe, list(sets), data), out)


def pairs(n: int) -> list[dict]:
    return [json.loads(line) for line in PAIRS.read_text().splitlines()[:n]]


def write_pairs(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs(n)))
    return path


def reply_logprob(model, tokenizer, prompt: list[dict], reply: list[dict]) -> float:
    """log p(reply | prompt) under the chat template, summed over the reply's tokens."""
    import torch

    prefix = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    full = tokenizer.apply_chat_template(prompt + reply, tokenize=True, return_dict=True)["input_ids"]
    assert full[:len(prefix)] == prefix
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0, :-1].float()
    logps = torch.log_softmax(logits, -1).gather(1, torch.tensor(full[1:])[:, None])[:, 0]
    return float(logps[len(prefix) - 1:].sum())


def mean_margin(model, tokenizer, rows: list[dict]) -> float:
    """Mean over pairs of log p(chosen) - log p(rejected)."""
    margins = [reply_logprob(model, tokenizer, r["prompt"], r["chosen"]) - reply_logprob(model, tokenizer, r["prompt"], r["rejected"])
               for r in rows]
    return sum(margins) / len(margins)


def trained(out: Path):
    """The model a LoRA run wrote (base + adapter), for scoring."""
    from transformers import AutoTokenizer

    from notos.train.models import load_adapter_model

    return load_adapter_model(out / "model").eval(), AutoTokenizer.from_pretrained(str(out / "model"))
