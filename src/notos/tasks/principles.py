"""System-prompt pools and a keep/drop quality filter, all pure (no LLM, no I/O).

- Orca-style: answers generated under varied system messages (explain step by step, as to a
  five-year-old, ...) so the student learns the reasoning, not only the answer.
- UltraFeedback-style principles: each row is answered under one principle (helpfulness,
  honesty, truthfulness, verbalized calibration) so the completions differ in those traits.
- OpenBezoar-style "LLM as a human proxy" filter: a judge keeps or drops each generated pair.

Choices per row hash (seed, row_id) instead of using a random generator: the same row gets the
same system prompt on every run and on resume, whatever the batch order.
"""

from __future__ import annotations

import hashlib
import re

ORCA_SYSTEM_MESSAGES = (
    "You are a helpful assistant. Explain your answer step by step so the reader can follow how you reached it.",
    "You are a patient assistant who always explains. Answer as if you were talking to a five-year-old.",
    "You will be given a task. Work through it step by step, and justify each step before moving on.",
    "You are a helpful assistant who always gives an explanation along with the answer.",
    "For multiple-choice questions, first state the correct answer, then explain why each other option is wrong.",
    "You are an assistant that answers thoroughly, so the user does not need to look anything up elsewhere.",
    ("You are a teacher. Restate in simple words what the task asks and any rules it gives, then show how "
    "those rules lead to the answer."),
    ("Follow the user's instructions as faithfully as you can. Think the task through step by step and "
    "explain how you used its definitions to arrive at your answer."),
)


def orca_messages(instruction: str, system_index_or_text: int | str) -> list[dict]:
    if isinstance(system_index_or_text, bool):
        raise ValueError("system message must be an index or a text, not a bool")
    if isinstance(system_index_or_text, int):
        if not 0 <= system_index_or_text < len(ORCA_SYSTEM_MESSAGES):
            raise ValueError(f"system message index {system_index_or_text} is out of range "
                             f"0..{len(ORCA_SYSTEM_MESSAGES) - 1}")
        system = ORCA_SYSTEM_MESSAGES[system_index_or_text]
    else:
        system = system_index_or_text.strip()
    user = {"role": "user", "content": instruction}
    return [{"role": "system", "content": system}, user] if system else [user]  # Orca also used no system


def pick_system_message(row_id: str, seed: int) -> int:
    return int(_unit(row_id, seed, "orca") * len(ORCA_SYSTEM_MESSAGES))


PRINCIPLES = {
    "helpfulness": (
        ("You are a helpful assistant. Give answers that are accurate, relevant and useful, and that "
        "fully address what the user asked."),
        ("As an assistant, aim to be genuinely useful: informative, clear and engaging, with practical "
        "detail the user can act on."),
        ("Be a knowledgeable and friendly assistant. Answer thoroughly, stay on topic, and make the answer "
        "easy to follow."),
        ("Your goal is to help the user succeed at their task. Anticipate what they need and provide "
        "correct, complete and well-organized information."),
    ),
    "honesty": (
        "You are an honest assistant. If you are not sure of something, say so plainly instead of guessing.",
        ("Be candid about the limits of your knowledge. When you do not know the answer, say 'I don't know' "
        "and explain what would be needed to find out."),
        "Answer truthfully and express uncertainty where it exists. Never present a guess as a certainty.",
        ("As an assistant, be honest above all: admit mistakes and gaps, and do not pretend to have "
        "information or abilities you lack."),
    ),
    "truthfulness": (
        ("You are a factual assistant. State only what is supported by reliable knowledge and do not invent "
        "facts, names, numbers or sources."),
        ("Keep your answer grounded in the question and in verified facts. If the question rests on a false "
        "premise, point that out instead of playing along."),
        ("Avoid hallucination: do not add details that are not true or not given. If something cannot be "
        "answered accurately, explain why."),
        ("Be accurate and faithful to the facts and to the user's input. Do not introduce unsupported "
        "claims or contradict the provided context."),
    ),
    "verbalized_calibration": (
        ("Answer the question, then on the last line state how confident you are in your answer as a "
        "percentage, in the form 'Confidence: 80%'."),
        ("After answering, express your confidence as a number between 0 and 100 on a final line, e.g. "
        "'Confidence: 65%'. Be calibrated: lower it when you are unsure."),
        ("Give your best answer, then rate how likely it is to be correct with a final line 'Confidence: N%'. "
        "Your confidence should match how often answers like yours are right."),
        ("Respond to the user, and end with a line 'Confidence: N%' that honestly reflects your certainty in "
        "the answer above it."),
    ),
}

# UltraFeedback answered most rows for helpfulness and fewer under the other principles; this
# mix follows that loosely.
DEFAULT_PRINCIPLE_WEIGHTS = {"helpfulness": 0.5, "truthfulness": 0.2, "honesty": 0.2, "verbalized_calibration": 0.1}


def pick_principle(row_id: str, seed: int, weights: dict[str, float] | None = None) -> tuple[str, str]:
    weights = DEFAULT_PRINCIPLE_WEIGHTS if weights is None else weights
    unknown = set(weights) - set(PRINCIPLES)
    if unknown:
        raise ValueError(f"unknown principle(s) {sorted(unknown)}; known: {sorted(PRINCIPLES)}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"principle weights must be non-negative and not all zero, got {weights}")
    target = _unit(row_id, seed, "principle") * sum(weights.values())
    chosen, total = None, 0.0
    for name, weight in weights.items():
        if weight <= 0:
            continue
        chosen, total = name, total + weight
        if target < total:
            break
    prompts = PRINCIPLES[chosen]
    # A separate hash for the prompt, so the prompt choice is independent of the principle choice.
    return chosen, prompts[int(_unit(row_id, seed, "prompt") * len(prompts))]


def draw_system_prompt(key: str, pool: str, weights: dict[str, float] | None = None, seed: int = 0) -> tuple[str, str]:
    """(principle, system prompt) drawn for `key` (a row id) from a pool: "principles" (UltraFeedback's,
    weighted) or "orca" (principle `orca-<index>`). The same key gets the same draw on every run."""
    if pool == "orca":
        index = pick_system_message(key, seed)
        return f"orca-{index}", ORCA_SYSTEM_MESSAGES[index]
    return pick_principle(key, seed, weights)


# ---------------------------------------------------------------- quality filter

def quality_messages(instruction: str, response: str, rubric: str | None = None) -> list[dict]:
    criteria = rubric.strip() if rubric and rubric.strip() else (
        "Keep the pair only if the instruction is clear and sensible, and the response follows it, is "
        "correct, complete and well written. Drop it if the instruction is vague, unanswerable or "
        "harmful, or if the response is wrong, off-topic, truncated, evasive or a refusal.")
    system = ("You review training data for an AI assistant, standing in for a careful human annotator. "
              "Judge the instruction-response pair strictly against the criteria.")
    user = (
        f"Criteria: {criteria}\n\n[Instruction]\n{instruction}\n\n[Response]\n{response}\n\n"
        "First give a short reason (one or two sentences). Then end with exactly these two lines:\n"
        "Verdict: KEEP or Verdict: DROP\nScore: N (an integer from 1, worst, to 10, best)"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_VERDICT = re.compile(r"verdict\s*(?:[:=\-\u2013]|\n)\s*[\[\"'(]?\s*(keep|drop)(?:ped)?\b", re.I)
# The format line echoed back ("Verdict: KEEP or Verdict: DROP", "KEEP/DROP") is not a decision.
_ECHO = re.compile(r"verdict\s*:?\s*[\[(]?\s*(?:keep|drop)\s*(?:or|/|\|)\s*(?:verdict\s*:?\s*)?(?:keep|drop)[\])]?", re.I)
_SCORE = re.compile(r"score\s*(?:[:=\-\u2013]|\n)\s*[\[(]?\s*(\d+(?:\.\d+)?)(?!\s*[-\u2013]\s*\d)"
                    r"(?:\s*(?:/|out of)\s*(\d+))?", re.I)
_META_LINE = re.compile(r"^\s*(?:final\s+)?(?:verdict|score)\b.*$", re.I | re.M)


def parse_quality(text: str | None, min_score: int | None = None) -> dict:
    result = {"keep": None, "score": None, "reason": "", "error": None}
    if not text or not text.strip():
        result["error"] = "empty judge response"
        return result
    clean = re.sub(r"(\*\*|__|`)", "", text.replace("\r\n", "\n").replace("\r", "\n"))
    clean = _ECHO.sub("", clean)
    verdicts = _VERDICT.findall(clean)
    if verdicts:  # a judge that changes its mind: the last verdict is its final answer
        result["keep"] = verdicts[-1].lower() == "keep"
    scores = _SCORE.findall(clean)
    if scores:
        value, scale = scores[-1]
        score = int(float(value) + 0.5)
        if scale and int(scale) not in (0, 10) and 0 <= float(value) <= int(scale):
            score = int(float(value) * 10 / int(scale) + 0.5)  # '4/5' is on another scale: rescale to 1-10
        result["score"] = score if 1 <= score <= 10 else None
    if min_score is not None and result["score"] is not None:
        result["keep"] = result["score"] >= min_score
    reason = re.split(r"\breason\s*:", clean, flags=re.I)[-1]  # after the last 'Reason:' label, if any
    reason = _SCORE.sub("", _VERDICT.sub("", _META_LINE.sub("", reason)))
    result["reason"] = " ".join(reason.split())
    if result["keep"] is None:
        result["error"] = ("score found but no verdict; pass min_score to decide" if result["score"] is not None
                           else "no verdict or score found")
    return result


def _unit(row_id: str, seed: int, salt: str) -> float:
    """A stable number in [0, 1) per (seed, row, purpose): Python's hash() changes between runs."""
    digest = hashlib.sha256(f"{seed}\x1f{salt}\x1f{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
