"""Asking a judge for its verdict, in text or from its probabilities.

`text`: the judge writes its explanation and a `[[N]]` / `[[A]]` verdict (strong models).
`logprob`: the verdict is read from the judge's probabilities of each verdict after a forced
"Verdict: [[" (small local models, which rarely finish the format on their own): single
grading gets the expectation over 1..10, pairwise the most likely of A, B, C, written as the
text the usual parsers read, so both modes share one parser. `auto`: logprob for local
backends, text for servers (an OpenAI-compatible API cannot force the prefix).

A judge step asks with `judge_ask` and reads the answer with `judge_text`.
"""

from __future__ import annotations

from notos.tasks.llm_steps import Ask, resolve_mode

JUDGE_MODES = ("auto", "text", "logprob")
PREFIX = "Verdict: [["
# The closing brackets are part of each candidate: without them "1" would always be at least as
# likely as "10", whose first token it is.
SINGLE_CANDIDATES = [f"{n}]]" for n in range(1, 11)]
PAIRWISE_CANDIDATES = ["A]]", "B]]", "C]]"]
NO_VERDICT = "judge: no probability on any verdict"


def check_judge_mode(mode: str, where: str) -> None:
    from notos.errors import NotosError

    if mode not in JUDGE_MODES:
        raise NotosError(f"{where}: judge mode must be one of {', '.join(JUDGE_MODES)}, got {mode!r}")


def judge_ask(messages: list[dict], kind: str, mode: str, llm) -> Ask:
    """The request for one verdict; `kind` is "single" or "pairwise", `mode` as the step has it."""
    if resolve_mode(mode, llm) == "text":
        return Ask(messages)
    return Ask(messages, candidates=tuple(SINGLE_CANDIDATES if kind == "single" else PAIRWISE_CANDIDATES), prefix=PREFIX)


def judge_text(answer, kind: str) -> str | None:
    """The judge's text: what it wrote, or the verdict its probabilities give (None: no probability)."""
    if hasattr(answer, "texts"):
        return answer.texts[0]
    verdict = verdict_of(answer.probs, kind)
    return None if verdict is None else f"(verdict read from the judge's probabilities) {verdict}"


def verdict_of(probs: dict[str, float], kind: str) -> str | None:
    if not probs:
        return None
    if kind == "single":
        expected = sum(int(k.removesuffix("]]")) * p for k, p in probs.items())
        return f"[[{expected:.2f}]]"
    return f"[[{max(sorted(probs), key=lambda k: probs[k]).removesuffix(']]')}]]"
