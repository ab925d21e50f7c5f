"""LLM-as-a-judge prompts and verdict parsers, MT-Bench style. Pure functions: no LLM calls, no I/O.

Single-answer grading: the judge explains briefly, then gives `[[N]]`, N in 1..10.
Pairwise comparison: the judge gives `[[A]]`, `[[B]]` or `[[C]]` (C = tie); run it twice with the
answers swapped and `reconcile` the two verdicts to cancel the judge's position bias.

Parsers never raise on model text: they return the verdict (or None) and `error` (None or a reason),
plus `ambiguous` when the text holds several verdicts that disagree (the last one still wins).
"""

from __future__ import annotations

import re

SCORE_MIN, SCORE_MAX = 1, 10

# Optional backslashes: some models markdown-escape brackets (`\[\[7\]\]`). A `/10` suffix and a
# decimal comma (`[[8,5]]`) are tolerated because judges write them often enough to matter.
_SCORE_RE = re.compile(r"\\?\[\\?\[\s*\**\s*(-?\d+(?:[.,]\d+)?)\s*(?:/\s*10)?\s*\**\s*\\?\]\\?\]")
_CHOICE_RE = re.compile(r"\\?\[\\?\[\s*\**\s*(A|B|C|tie)\s*\**\s*\\?\]\\?\]", re.IGNORECASE)

_SINGLE_SYSTEM = (
    "You are an impartial judge of AI assistant answers. Assess the answer on helpfulness, relevance, "
    "accuracy, depth, creativity and level of detail. Start with a short explanation of your assessment, "
    "staying as objective as possible. Then give your verdict as an integer from 1 (worst) to 10 (best), "
    "written strictly in double square brackets, e.g. [[6]]. Write nothing after the verdict."
)
_SINGLE_SYSTEM_REF = (
    "You are an impartial judge of AI assistant answers. A reference answer is provided: compare the "
    "assistant's answer with it, and find and correct any mistakes the assistant made. Correctness "
    "matters most. Start with a short explanation, staying as objective as possible. Then give your "
    "verdict as an integer from 1 (worst) to 10 (best), written strictly in double square brackets, "
    "e.g. [[6]]. Write nothing after the verdict."
)
_MULTI_NOTE = (
    " The conversation has several turns; grade only the assistant's reply to the LAST user message, "
    "using the earlier turns as context."
)
_PAIR_SYSTEM = (
    "You are an impartial judge comparing two AI assistant answers, A and B, to the same user question. "
    "Decide which answer follows the user's instructions and answers the question better, considering "
    "helpfulness, relevance, accuracy, depth, creativity and level of detail. The order in which the "
    "answers appear must not influence you, nor their length, nor the assistants' names. Start with a "
    "short comparison, staying as objective as possible. Then give your verdict strictly as [[A]] if A "
    "is better, [[B]] if B is better, or [[C]] for a tie. Write nothing after the verdict."
)
_PAIR_REF_NOTE = (
    " A reference answer is provided: check both answers against it and find their mistakes; "
    "correctness matters most."
)


def _block(tag: str, text: str) -> str:
    # Tagged blocks keep the judge from mistaking where a quoted answer ends.
    # `tag` may carry attributes (`user turn="1"`); the closing tag uses only the name.
    return f"<{tag}>\n{text}\n</{tag.split()[0]}>"


def single_messages(question: str, answer: str, *, reference: str | None = None,
                    turn_context: list[tuple[str, str]] | None = None) -> list[dict]:
    """Chat messages asking a judge to grade `answer` to `question` from 1 to 10 as `[[N]]`.

    `reference`: a reference answer to compare against (MT-Bench uses them for math, reasoning, coding).
    `turn_context`: earlier (user, assistant) turns, shown before the graded turn.
    """
    system = _SINGLE_SYSTEM_REF if reference is not None else _SINGLE_SYSTEM
    parts = []
    if turn_context:
        system += _MULTI_NOTE
        for i, turn in enumerate(turn_context, 1):
            if not (isinstance(turn, (tuple, list)) and len(turn) == 2):
                raise ValueError(f"turn_context[{i - 1}] must be a (user, assistant) pair, got {turn!r}")
            parts += [_block(f'user turn="{i}"', turn[0]), _block(f'assistant turn="{i}"', turn[1])]
        n = len(turn_context) + 1
        parts += [_block(f'user turn="{n}"', question)]
        if reference is not None:
            parts.append(_block("reference_answer", reference))
        parts.append(_block(f'assistant turn="{n}" graded="yes"', answer))
    else:
        parts.append(_block("question", question))
        if reference is not None:
            parts.append(_block("reference_answer", reference))
        parts.append(_block("answer", answer))
    parts.append("Explain briefly, then end with your verdict as [[N]], N from 1 to 10.")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def pairwise_messages(question: str, answer_a: str, answer_b: str, *, reference: str | None = None) -> list[dict]:
    """Chat messages asking a judge to pick the better of two answers: `[[A]]`, `[[B]]` or `[[C]]` (tie)."""
    system = _PAIR_SYSTEM + (_PAIR_REF_NOTE if reference is not None else "")
    parts = [_block("question", question)]
    if reference is not None:
        parts.append(_block("reference_answer", reference))
    parts += [_block("answer_A", answer_a), _block("answer_B", answer_b)]
    parts.append("Compare briefly, then end with exactly one verdict: [[A]], [[B]] or [[C]] (tie).")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def _number(raw: str) -> int | float:
    raw = raw.replace(",", ".")
    # An int stays an int; a written decimal (even `7.0`) is returned as the float the judge gave.
    return float(raw) if "." in raw else int(raw)


def parse_single(text: str | None) -> dict:
    """`{"score": int|float|None, "error": str|None, "ambiguous": bool}` from a single-grading judge output.

    The LAST `[[N]]` wins: judges often quote the answer (which may hold brackets) or restate the
    verdict at the end. `ambiguous` is True when earlier verdicts differ from the last one.
    """
    if not isinstance(text, str) or not text.strip():
        return {"score": None, "error": "empty judge output", "ambiguous": False}
    found = [_number(m) for m in _SCORE_RE.findall(text)]
    if not found:
        return {"score": None, "error": "no [[N]] verdict", "ambiguous": False}
    score, ambiguous = found[-1], len(set(found)) > 1
    if not SCORE_MIN <= score <= SCORE_MAX:
        return {"score": None, "error": f"verdict {score} outside {SCORE_MIN}..{SCORE_MAX}", "ambiguous": ambiguous}
    return {"score": score, "error": None, "ambiguous": ambiguous}


def parse_pairwise(text: str | None) -> dict:
    """`{"winner": "A"|"B"|"tie"|None, "error": str|None, "ambiguous": bool}` from a pairwise judge output.

    Case, inner spaces and bold are tolerated; `[[tie]]` counts as `[[C]]`. The last verdict wins, and
    `ambiguous` notes conflicting ones (e.g. the judge first quoting the format "[[A]], [[B]] or [[C]]").
    """
    if not isinstance(text, str) or not text.strip():
        return {"winner": None, "error": "empty judge output", "ambiguous": False}
    found = [{"A": "A", "B": "B"}.get(m.upper(), "tie") for m in _CHOICE_RE.findall(text)]
    if not found:
        return {"winner": None, "error": "no [[A]]/[[B]]/[[C]] verdict", "ambiguous": False}
    return {"winner": found[-1], "error": None, "ambiguous": len(set(found)) > 1}


def _winner_of(verdict) -> str | None:
    # Accept a parse_pairwise dict or a bare winner ("A", "B", "C"/"tie", None).
    if isinstance(verdict, dict):
        verdict = verdict.get("winner")
    if verdict is None:
        return None
    v = str(verdict).strip().upper()
    if v in ("A", "B"):
        return v
    if v in ("C", "TIE"):
        return "tie"
    raise ValueError(f"unknown pairwise verdict {verdict!r}")


# A verdict on (answer1 as A, answer2 as B) as the winning answer; SWAPPED for the other order.
IN_ORDER = {"A": "1", "B": "2", "tie": "tie", None: None}
SWAPPED = {"A": "2", "B": "1", "tie": "tie", None: None}


def reconcile(first, second) -> dict:
    """Combine two pairwise verdicts into `{"winner": "1"|"2"|"tie"|None, "consistent": bool}`.

    `first` judged (answer1 as A, answer2 as B); `second` judged the swapped order (answer2 as A,
    answer1 as B). FastChat's rule: verdicts that agree once mapped back give that winner; a
    disagreement is a tie (the judge followed position, not content). A missing verdict leaves the
    other one, marked inconsistent since it was not confirmed.
    """
    w1 = IN_ORDER[_winner_of(first)]
    w2 = SWAPPED[_winner_of(second)]
    if w1 is None or w2 is None:
        return {"winner": w1 if w2 is None else w2, "consistent": False}
    if w1 == w2:
        return {"winner": w1, "consistent": True}
    return {"winner": "tie", "consistent": False}
