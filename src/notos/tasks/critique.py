"""Critique prompts and parser, UltraCM style: textual feedback on a response plus an overall score.
Pure functions: no LLM calls, no I/O.

The critic writes its feedback, then a final line `Overall score: N` with N in 1..10. The parser
splits the two and never raises on model text: it returns `error` (None or a reason) instead.
"""

from __future__ import annotations

import re

SCORE_MIN, SCORE_MAX = 1, 10

_SYSTEM = (
    "You are a demanding but fair teacher reviewing an AI assistant's response. Give specific, "
    "constructive feedback that would help the assistant do better next time: point out weaknesses "
    "and say concretely how to fix them. Weigh helpfulness, truthfulness, honesty and how closely the "
    "response follows the instruction. Do not add requirements the instruction does not state, do not "
    "write the ideal response yourself, and skip pleasantries. Keep the feedback concise."
)

# A score line: optional markdown (quote, heading, list, bold) before "overall score" / "score"
# (or "rating"), a separator, the number, optional "/10" or "out of 10". Anchored at the line start
# so a sentence merely mentioning a score is not taken for the verdict; `(?![\d.,]?\d)` stops
# "Score: 10" from reading as 1 and "7.5" as 7.
_SCORE_LINE = re.compile(
    r"^[\s>#*_-]*(?:overall[\s*_]+)?(?:score|rating)[\s*_]*[:：=-]?[\s*_]*\[*\s*"
    r"(-?\d+(?:[.,]\d+)?)(?![\d.,]?\d)\s*\]*\s*(?:/\s*10|out\s+of\s+10)?",
    re.IGNORECASE,
)
# UltraCM itself opens with "### Feedback"; a heading-only line like that is no part of the critique.
_HEADING = re.compile(r"^[\s#*_]*feedback[\s*_:]*$", re.IGNORECASE)


def critique_messages(instruction: str, response: str) -> list[dict]:
    """Chat messages asking a critic for feedback on `response`, ending with `Overall score: N` (1..10)."""
    user = (
        f"<instruction>\n{instruction}\n</instruction>\n\n<response>\n{response}\n</response>\n\n"
        "Write your feedback on the response first. Then, on its own final line, rate the overall "
        "quality from 1 (worst) to 10 (best) exactly in this form:\nOverall score: N"
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def _number(raw: str) -> int | float:
    raw = raw.replace(",", ".")
    return float(raw) if "." in raw else int(raw)


def parse_critique(text: str | None) -> dict:
    """`{"critique": str, "overall_score": int|float|None, "error": str|None}` from a critic's output.

    The LAST score line wins (a critic may mention a sub-score earlier, or restate at the end); it is
    removed from `critique`, everything else is kept. A decimal score comes back as a float.
    """
    if not isinstance(text, str) or not text.strip():
        return {"critique": "", "overall_score": None, "error": "empty critique output"}
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    hit = None
    for i, line in enumerate(lines):
        m = _SCORE_LINE.match(line)
        if m:
            hit = (i, m.group(1))
    if hit is not None:
        del lines[hit[0]]
    kept = [ln.rstrip() for ln in lines]
    while kept and not kept[0].strip():
        kept.pop(0)
    if kept and _HEADING.match(kept[0]):
        kept.pop(0)
    critique = "\n".join(kept).strip()
    if hit is None:
        return {"critique": critique, "overall_score": None, "error": "no 'Overall score: N' line"}
    score = _number(hit[1])
    if not SCORE_MIN <= score <= SCORE_MAX:
        return {"critique": critique, "overall_score": None,
                "error": f"overall score {score} outside {SCORE_MIN}..{SCORE_MAX}"}
    return {"critique": critique, "overall_score": score, "error": None}
