"""Batched greedy/sampled decoding where every row brings its own settings, and rows join and
leave the batch between steps (continuous batching).

transformers' `generate` takes one temperature, one seed and one stop list for a whole batch,
and runs until its longest row ends. Here each row carries its own `GenerationParams` and its
own random generator, so the three generator steps of a recipe (one model, three system
prompts, three temperatures) decode as one batch; a finished row leaves at once and a waiting
one takes its place after a prefill of its own, its keys left-padded to the running batch.

A row's sampled tokens depend on its own seed and prompt, not on its neighbours: each row draws
from a `torch.Generator` seeded from (seed, copy number, prompt tokens).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from dataclasses import dataclass, field

from notos.llms import q4_decode
from notos.llms.types import GenerationParams


@dataclass
class Row:
    """One sequence to decode: a prompt, its settings and what came out so far."""

    prompt: list[int]
    params: GenerationParams
    copy: int = 0  # which of the n samples of its conversation
    future: Future = field(default_factory=Future)
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    ended_by_eos: bool = False
    generator: object = None

    @property
    def greedy(self) -> bool:
        return self.params.temperature <= 0


def row_seed(seed: int, copy: int, prompt: list[int]) -> int:
    digest = hashlib.sha256(f"{seed}|{copy}|{','.join(map(str, prompt))}".encode()).hexdigest()
    return int(digest[:15], 16)


def make_generator(row: Row):
    import torch

    generator = torch.Generator()
    if row.params.seed is None:
        generator.seed()
    else:
        generator.manual_seed(row_seed(row.params.seed, row.copy, row.prompt))
    return generator


def choose_tokens(logits, rows: list[Row]) -> tuple[list[int], list[float] | None]:
    """The next token of every row (logits: rows x vocab, float32), and its log-probability
    under the model's own distribution when any row asked for log-probs."""
    import torch

    greedy = logits.argmax(dim=-1).tolist()
    chosen = []
    for k, row in enumerate(rows):
        if row.greedy:
            chosen.append(greedy[k])
            continue
        if row.generator is None:
            row.generator = make_generator(row)
        scaled = logits[k] / row.params.temperature
        probs = torch.softmax(scaled, dim=-1)
        if row.params.top_p < 1.0:
            probs = _top_p(probs, row.params.top_p)
        chosen.append(int(torch.multinomial(probs, 1, generator=row.generator)))
    if not any(row.params.logprobs for row in rows):
        return chosen, None
    logprobs = torch.log_softmax(logits, dim=-1)
    picked = logprobs.gather(-1, torch.tensor(chosen)[:, None]).squeeze(-1).tolist()
    return chosen, picked


def _top_p(probs, top_p: float):
    """Keep the most likely tokens whose mass reaches top_p (at least one), renormalised."""
    import torch

    ordered, order = torch.sort(probs, descending=True)
    before = torch.cumsum(ordered, dim=-1) - ordered  # mass of the tokens ranked above each one
    ordered[before >= top_p] = 0.0
    kept = torch.zeros_like(probs).scatter_(-1, order, ordered)
    return kept / kept.sum()


class Batch:
    """The rows decoding together, their attention mask and KV cache (rows x left-padded length)."""

    def __init__(self, model, pad_id: int, cache_name: str):
        self.model, self.pad_id, self.cache_name = model, pad_id, cache_name
        self.rows: list[Row] = []
        self.cache = None
        self.mask = None  # (rows, cached length): 1 where a row has a real token
        self.next_tokens: list[int] = []

    def __len__(self) -> int:
        return len(self.rows)

    def admit(self, rows: list[Row]) -> list[tuple[Row, object]]:
        """Prefill `rows` in one left-padded pass and join them to the batch. Returns each
        new row with the logits of its first token."""
        import torch

        width = max(len(r.prompt) for r in rows)
        device = self.model.device
        ids = torch.tensor([[self.pad_id] * (width - len(r.prompt)) + r.prompt for r in rows], device=device)
        mask = torch.tensor([[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r in rows], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with q4_decode.generating(prompts=True):
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache = getattr(out, self.cache_name)
        if self.cache is None:
            self.cache, self.mask = cache, mask
        else:
            self.cache, self.mask = _join(self.cache, self.mask, cache, mask)
        self.rows.extend(rows)
        return list(zip(rows, out.logits[:, -1].float()))

    def step(self, tokens: list[int]):
        """Feed each row its last token; the logits of the next one (rows x vocab, float32)."""
        import torch

        device = self.model.device
        self.mask = torch.cat([self.mask, torch.ones((len(self.rows), 1), dtype=self.mask.dtype, device=device)], dim=1)
        positions = (self.mask.sum(-1, keepdim=True) - 1)
        with q4_decode.generating():
            out = self.model(input_ids=torch.tensor(tokens, device=device)[:, None], attention_mask=self.mask,
                             position_ids=positions, use_cache=True, **{self.cache_name: self.cache})
        self.cache = getattr(out, self.cache_name)
        return out.logits[:, -1].float()

    def keep(self, indices: list[int]) -> None:
        """Drop every row not in `indices`, then the leading columns no remaining row uses."""
        import torch

        if len(indices) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in indices]
        if not indices:
            self.cache = self.mask = None
            return
        index = torch.tensor(indices, device=self.mask.device)
        self.mask = self.mask[index]
        self.cache.batch_select_indices(index)
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start:
            self.mask = self.mask[:, start:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., start:, :], layer.values[..., start:, :]


def can_join(cache) -> bool:
    """Only plain growing caches can be padded and stacked (no sliding windows, no quantized)."""
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in getattr(cache, "layers", [None]))


def _join(cache, mask, extra, extra_mask):
    """Stack two caches along the batch, the shorter left-padded with zeros (masked out)."""
    import torch

    length = max(mask.shape[1], extra_mask.shape[1])

    def pad(tensor, dim_length):
        missing = length - dim_length
        if not missing:
            return tensor
        shape = list(tensor.shape)
        shape[-2] = missing
        return torch.cat([tensor.new_zeros(shape), tensor], dim=-2)

    for layer, new in zip(cache.layers, extra.layers):
        layer.keys = torch.cat([pad(layer.keys, mask.shape[1]), pad(new.keys, extra_mask.shape[1])], dim=0)
        layer.values = torch.cat([pad(layer.values, mask.shape[1]), pad(new.values, extra_mask.shape[1])], dim=0)
    joined = torch.cat([torch.nn.functional.pad(mask, (length - mask.shape[1], 0)),
                        torch.nn.functional.pad(extra_mask, (length - extra_mask.shape[1], 0))], dim=0)
    return cache, joined
