"""A trained reward model as a pipeline step (the UltraRM role): one score per response.

    - name: reward
      type: reward_score
      after: generate
      model_path: runs/train/quickstart-rm     # a `notos train rm` output folder, or a model folder
      generations_column: generations          # a list of responses (or one response: a string)

Adds `reward_scores`: one float per response (higher is preferred). Each (instruction,
response) is rendered with the reward model's chat template exactly as RewardTrainer saw its
training pairs, and scored in batches of `batch_size`.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from notos.errors import GraphError

if TYPE_CHECKING:
    from notos.pipeline.step import Step


def reward_score(model_path, instruction_column: str = "instruction", generations_column: str = "generations",
                 batch_size: int = 8, *, name: str = "reward_score", **settings) -> Step:
    from notos.pipeline.step import Step

    folder = Path(str(model_path)).expanduser().resolve()
    if not folder.exists():
        raise GraphError(f"step '{name}': model_path {model_path}: no such folder")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise GraphError(f"step '{name}': option 'batch_size' must be a positive integer, got {batch_size!r}")
    options = {"model_path": str(folder), "instruction_column": instruction_column,
               "generations_column": generations_column, "batch_size": batch_size}
    version = _model_version(folder)  # retraining into the same folder must rescore, not reuse the cache
    settings.setdefault("workers", "thread")
    return Step(name=name, kind="map", fn=score_batch, per_row=False,
                inputs={instruction_column: "str", generations_column: "any"}, outputs=("reward_scores",),
                options=options, type_name="reward_score", hash_options=lambda o: {**o, "model_version": version},
                **settings)


def score_batch(rows: list[dict], *, model_path, instruction_column, generations_column, batch_size) -> list[dict]:
    scorer = _scorer(model_path)
    out, conversations, where = [], [], []
    for i, row in enumerate(rows):
        responses = row[generations_column]
        responses = [responses] if isinstance(responses, str) else list(responses or [])
        if not responses or any(not isinstance(r, str) for r in responses):
            out.append({**row, "_error": f"column '{generations_column}' holds no responses or a non-text one"})
            continue
        out.append({**row, "reward_scores": [None] * len(responses)})
        for k, response in enumerate(responses):
            conversations.append([{"role": "user", "content": row[instruction_column]},
                                  {"role": "assistant", "content": response}])
            where.append((i, k))
    scores = scorer.score(conversations, batch_size)
    for (i, k), value in zip(where, scores):
        out[i]["reward_scores"][k] = value
    return out


class RewardScorer:
    """A sequence-classification model with one output; `score` is thread-safe."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.lock = threading.Lock()

    def score(self, conversations: list[list[dict]], batch_size: int = 8) -> list[float]:
        import torch

        ids = [self.tokenizer.apply_chat_template(c, tokenize=True, return_dict=True)["input_ids"] for c in conversations]
        pad = self.tokenizer.pad_token_id
        scores = []
        with self.lock, torch.no_grad():
            for start in range(0, len(ids), batch_size):
                chunk = ids[start:start + batch_size]
                width = max(map(len, chunk))
                # Right padding, as RewardTrainer's collator: the head reads the last non-pad token.
                input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in chunk])
                mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in chunk])
                logits = self.model(input_ids=input_ids.to(self.model.device), attention_mask=mask.to(self.model.device)).logits
                scores.extend(float(v) for v in logits[:, 0].float().cpu())
        return scores


@lru_cache(maxsize=4)
def _scorer(model_path: str) -> RewardScorer:
    import torch

    from notos.llms.hf_local import default_threads
    from notos.train.models import RUN_MARKER, load_adapter_model, load_model, load_tokenizer

    folder = Path(model_path)
    if (folder / RUN_MARKER).exists():
        folder = folder / "merged" if (folder / "merged" / "config.json").exists() else folder / "model"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(default_threads())
    if (folder / "adapter_config.json").exists():
        model = load_adapter_model(folder, dtype=torch.float32).merge_and_unload()
    else:
        model = load_model(str(folder), dtype=torch.float32, head="score")
    tokenizer = load_tokenizer(str(folder), None)
    model.config.pad_token_id = tokenizer.pad_token_id
    return RewardScorer(model.to(device), tokenizer)


def _model_version(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*.safetensors") if "checkpoints" not in p.parts)
    return ";".join(f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
