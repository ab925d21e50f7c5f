"""Asking a judge for its verdict, in text or from its probabilities.

`text`: the judge writes its explanation and a `[[N]]` / `[[A]]` verdict (strong models).
`logprob`: the verdict is read from the judge's probabilities of each verdict after a forced
"Verdict: [[" (small local models, which rarely finish the format on their own): single
grading gets the expectation over 1..10, pairwise the most likely of A, B, C. Either way the
caller gets `Generation`s whose text ends in a verdict the usual parsers read, so MT-Bench, win
rate and the judge steps share one code path. `auto`: logprob for local backends, text for
servers (an OpenAI-compatible API cannot force the prefix).
"""

from __future__ import annotations

JUDGE_MODES = ("auto", "text", "logprob")
PREFIX = "Verdict: [["
# The closing brackets are part of each candidate: without them "1" would always be at least as
# likely as "10", whose first token it is.
SINGLE_CANDIDATES = [f"{n}]]" for n in range(1, 11)]
PAIRWISE_CANDIDATES = ["A]]", "B]]", "C]]"]


def check_judge_mode(mode: str, where: str) -> None:
    from notos.errors import NotosError

    if mode not in JUDGE_MODES:
        raise NotosError(f"{where}: judge mode must be one of {', '.join(JUDGE_MODES)}, got {mode!r}")


def resolve_judge_mode(mode: str, llm) -> str:
    from notos.tasks.rating import resolve_mode

    return resolve_mode(mode, llm)


async def ask_judge(judge, conversations: list, params, mode: str, kind: str) -> list:
    """One Generation per conversation; `kind` is "single" or "pairwise"; `mode` resolved."""
    if mode == "text":
        return await judge.generate(conversations, params)
    from notos.llms.types import Generation

    candidates = SINGLE_CANDIDATES if kind == "single" else PAIRWISE_CANDIDATES
    scores = await judge.score_candidates(conversations, candidates, prefix=PREFIX)
    out = []
    for score in scores:
        verdict = None if score.error else _verdict(score.probs, kind)
        if verdict is None:
            out.append(Generation(error=score.error or "judge: no probability on any verdict"))
        else:
            out.append(Generation(texts=[f"(verdict read from the judge's probabilities) {verdict}"],
                                  finish_reasons=["logprob"]))
    return out


def _verdict(probs: dict[str, float], kind: str) -> str | None:
    if not probs:
        return None
    if kind == "single":
        expected = sum(int(k.removesuffix("]]")) * p for k, p in probs.items())
        return f"[[{expected:.2f}]]"
    return f"[[{max(sorted(probs), key=lambda k: probs[k]).removesuffix(']]')}]]"


class VerdictJudge:
    """A judge LLM whose `generate` answers with verdicts in the chosen mode, so code written
    around `generate` (MT-Bench, win rate) gets logprob verdicts without changing."""

    def __init__(self, llm, mode: str, kind: str):
        self.llm, self.mode, self.kind = llm, mode, kind

    @property
    def model_name(self) -> str:
        return self.llm.model_name

    async def generate(self, conversations: list, params) -> list:
        return await ask_judge(self.llm, conversations, params, self.mode, self.kind)


def judge_for(llm, spec, mode: str, kind: str):
    """`llm` itself in text mode, else a VerdictJudge around it."""
    mode = resolve_judge_mode(mode, spec)
    return llm if mode == "text" else VerdictJudge(llm, mode, kind)
