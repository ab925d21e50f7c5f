"""The one interface every backend implements.

    llm = get_llm("embedded")                       # or {"backend": "openai", "model": ...}
    outs = await llm.generate([[{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=32))
    outs[0].texts[0], outs[0].finish_reasons[0], outs[0].completion_tokens

Backends never raise for one conversation's failure: its `Generation.error` says why and the
other conversations of the batch are unaffected. They raise `NotosError` only for problems
that would fail every row the same way (bad credentials, unknown model, missing extra).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
Conversation = list[Message]


@dataclass(frozen=True)
class GenerationParams:
    """How to generate; an LLM step builds one per batch from the options it declares."""

    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1  # completions per conversation
    logprobs: bool = False  # return the log-probability of each generated token
    json_schema: dict | None = None  # structured output, where the backend supports it

    def __post_init__(self):
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif self.stop is None:
            object.__setattr__(self, "stop", ())
        else:
            object.__setattr__(self, "stop", tuple(self.stop))


@dataclass
class Generation:
    """The result for one conversation: `n` texts, or an error."""

    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)  # "stop" | "length" | what the server said
    prompt_tokens: int = 0
    completion_tokens: int = 0  # summed over the n texts
    token_logprobs: list[list[tuple[str, float]]] | None = None  # per text: (token, logprob) per token
    error: str | None = None


@dataclass
class CandidateScores:
    """How likely each candidate continuation is, for one conversation."""

    logprobs: dict[str, float | None] = field(default_factory=dict)  # None: not among the top tokens
    error: str | None = None

    @property
    def probs(self) -> dict[str, float]:
        """Probabilities renormalised over the candidates (a proper distribution)."""
        known = {k: v for k, v in self.logprobs.items() if v is not None}
        if not known:
            return {}
        top = max(known.values())
        weights = {k: math.exp(v - top) if k in known else 0.0 for k, v in self.logprobs.items()}
        total = sum(weights.values())
        return {k: w / total for k, w in weights.items()}

    def expected(self) -> float | None:
        """Expectation of numeric candidates ("1".."5") under `probs`."""
        probs = self.probs
        if not probs:
            return None
        return sum(float(k) * p for k, p in probs.items())

    def best(self) -> str | None:
        probs = self.probs
        return max(probs, key=probs.get) if probs else None


def match_candidates(top: Iterable[tuple[str, float]], candidates: list[str]) -> dict[str, float | None]:
    """Each candidate's logprob among the top first tokens (token text, logprob), comparing
    stripped text ("1" and " 1" are the same answer); several matches add up (logsumexp)."""
    found: dict[str, list[float]] = {}
    for token, logprob in top:
        found.setdefault(token.strip(), []).append(logprob)
    scores = {}
    for cand in candidates:
        values = found.get(cand.strip())
        scores[cand] = logsumexp(values) if values else None
    return scores


def logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def per_conversation(prefix: str | list[str], count: int) -> list[str]:
    """One forced prefix per conversation, from a single prefix or a list of them."""
    if isinstance(prefix, str):
        return [prefix] * count
    prefixes = list(prefix)
    if len(prefixes) != count:
        raise ValueError(f"{len(prefixes)} prefixes for {count} conversations")
    return prefixes


@runtime_checkable
class LLM(Protocol):
    model_name: str

    async def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Generation]: ...

    async def score_candidates(
        self, conversations: list[Conversation], candidates: list[str], prefix: str | list[str] = ""
    ) -> list[CandidateScores]:
        """Log-probabilities of each candidate as the start of the assistant's reply,
        after `prefix` (e.g. "Rating: ") has been forced as its first words. `prefix` may be
        one per conversation (rating text k of the same prompt: local backends reuse the
        prompt's computation across them)."""
        ...

    async def close(self) -> None: ...
