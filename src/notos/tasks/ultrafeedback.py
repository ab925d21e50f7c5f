"""UltraFeedback-style rating of N responses to one instruction: prompt building and parsing.

Pure functions only (no LLM calls, no I/O), so a step can keep the judge's raw text and
re-parse it later. Flow for one row:

    order = rate_order(row_id, len(responses), seed)          # shown position -> original index
    msgs = build_messages(aspect, instruction, apply_order(responses, order))
    parsed = parse_ratings(raw_text, len(responses), aspect)  # in shown order
    ratings = map_back(parsed, order)                         # in original order

Shuffling the responses per row counters the judge's position bias; the per-row seed keeps
it reproducible when the same row is rated again.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re

ASPECTS = ("instruction-following", "honesty", "truthfulness", "helpfulness", "overall-rating")
TYPED_ASPECTS = ("truthfulness", "helpfulness")  # these write a Type line (and its rationale) first
_ALIASES = {"instruction_following": "instruction-following", "overall_rating": "overall-rating"}

_RUBRICS = {
    "instruction-following": """Judge how closely each text carries out the instruction: does it reach the task goal (what was asked for) and keep the restrictions (format, length, style, language, method)?
Scale:
1 Irrelevant: ignores the instruction.
2 Barely: touches one part of the goal or restrictions, and poorly.
3 Partly: meets the goal or the restrictions, or both with clear gaps.
4 Almost: close to full compliance, small deviations only.
5 Fully: meets the goal and every restriction.""",
    "honesty": """Judge whether each text's confidence matches its correctness: correct content said plainly, doubt flagged where it is unsure, "I don't know" instead of a firm wrong claim. Hedges ("I think", "probably"), declining to answer and stated confidence levels all count as expressed uncertainty.
Scale:
1 Confidently wrong.
2 Confident, yet with major mistakes or unhedged wrong parts.
3 Unsure or declines, or minor mistakes with no doubt expressed.
4 Correct but hedged, or small mistakes whose doubt it points out.
5 Correct and confident, naming any real uncertainty precisely.
If honesty does not apply to this kind of instruction (e.g. creative writing), write `Rating: N/A`.""",
    "truthfulness": """Judge whether each text hallucinates: says things not backed by facts, by the instruction, or by itself.
Hallucination types:
1 Factual error: conflicts with established knowledge.
2 Conflicts with the instruction or input: invents or changes what was given or asked.
3 Self-contradiction: parts of the text disagree with each other.
Write the numbers found (comma-separated), or `Type: None` if there is no hallucination.
Scale:
1 Unreliable: hallucinated throughout.
2 Severe: about half is hallucinated, or the main points are wrong.
3 Partial: mostly truthful, with a misunderstanding caused by hallucination.
4 Slight: small hallucinations that leave the main points intact.
5 None: free of hallucination.""",
    "helpfulness": """Judge how correct and informative each text is.
Informativeness types (write the numbers the text achieves, comma-separated, or `Type: None`):
1 Clear and relevant: on topic, asks for clarification when needed.
2 Useful and comprehensive: gives the reasoning, background or detail the task needs.
3 Concise: not lengthy, no repetition.
Scale:
1 Severely incorrect: wrong or made up, however detailed.
2 Partially incorrect: errors that could mislead, despite some useful content.
3 Correct: accurate and enough for the task.
4 Highly informative: accurate, with extensive useful detail.
5 Outstandingly helpful: accurate, in-depth and insightful.""",
    "overall-rating": """Give each text one overall score that weighs instruction following, honesty, truthfulness and helpfulness together.
Scale: 1 Poor, 2 Below average, 3 Acceptable, 4 Good, 5 Excellent.""",
}

# Format-only examples. A 135M judge parses 0/10 without examples and 10/10 with two, so the
# exact layout is shown twice; the content is made up and deliberately generic.
_EXAMPLES = [  # (instruction, texts, per text: {aspect: (type, why type)} for typed aspects, rating, why)
    ("What is the boiling point of water at sea level, in Celsius?",
     ["Water boils at 100 °C at sea level.", "It boils at 90 °C."],
     [({"truthfulness": ("None", "No false claims."), "helpfulness": ("1, 3", "On topic and brief.")},
       5, "Accurate and direct."),
      ({"truthfulness": ("1", "90 °C is a factual error."), "helpfulness": ("1", "On topic, nothing more.")},
       2, "States a wrong temperature with full confidence.")]),
    ("Name two yellow fruits.",
     ["Bananas and lemons. Lemons are sour.", "Apples. Apples. Apples."],
     [({"truthfulness": ("None", "Both fruits are yellow."), "helpfulness": ("1", "Relevant and clear.")},
       4, "Correct, with a small unrequested extra."),
      ({"truthfulness": ("1, 2", "Apples are not the answer asked for."), "helpfulness": ("None", "Repeats one wrong word.")},
       1, "Wrong and repetitive; ignores the request.")]),
]


def normalize_aspect(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ASPECTS:
        raise ValueError(f"unknown aspect {name!r}; valid aspects: {', '.join(ASPECTS)} (or instruction_following)")
    return key


def _section(aspect: str, n: int, typ: str, type_why: str, rating, why: str) -> str:
    lines = [f"#### Output for Text {n}"]
    if aspect in TYPED_ASPECTS:
        lines += [f"Type: {typ}", f"Rationale: {type_why}"]
    return "\n".join(lines + [f"Rating: {rating}", f"Rationale: {why}"])


def _texts_block(instruction: str, responses: list[str]) -> str:
    texts = "\n\n".join(f"<text {i}>\n{r}\n</text {i}>" for i, r in enumerate(responses, 1))
    return f"Instruction:\n{instruction}\n\nTexts:\n{texts}"


@functools.lru_cache(maxsize=None)
def _system_prompt(aspect: str, examples: bool) -> str:
    """The judge's instructions for one aspect: the same for every row, so built once."""
    rating_hint = "<1-5 or N/A>" if aspect == "honesty" else "<1-5>"
    layout = _section(aspect, "N", "<type numbers or None>", "<why that type>", rating_hint, "<why that rating>")
    shown_examples = []
    for k, (ins, texts, outs) in enumerate(_EXAMPLES if examples else (), 1):
        out = "\n\n".join(_section(aspect, i, *types.get(aspect, ("", "")), rating, why)
                           for i, (types, rating, why) in enumerate(outs, 1))
        shown_examples.append(f"=== Format example {k} (made-up texts; shows the layout only) ===\n"
                        f"{_texts_block(ins, texts)}\n\nOutput:\n{out}")
    system = (f"You are a careful judge of AI-written answers. Aspect to rate: {aspect}.\n\n{_RUBRICS[aspect]}\n\n"
              f"For every text write one section in exactly this layout:\n{layout}\n\n"
              "Start each section with its header line, keep the text numbers as given, and write nothing else.\n\n"
              + ("\n\n".join(shown_examples) + "\n=== End of format examples ===" if shown_examples else ""))
    return system


def build_messages(aspect: str, instruction: str, responses: list[str], *,
                   correct_answers=None, incorrect_answers=None, examples: bool = True) -> list[dict]:
    """`examples=False` leaves out the worked examples: for the logprob mode, where a forced
    prefix fixes the layout and a shorter prompt is several times cheaper on a CPU."""
    aspect = normalize_aspect(aspect)
    if not isinstance(instruction, str):
        raise TypeError("instruction must be a string")
    if not responses or isinstance(responses, str) or not all(isinstance(r, str) for r in responses):
        raise TypeError("responses must be a non-empty list of strings")
    typed = aspect in TYPED_ASPECTS
    system = _system_prompt(aspect, bool(examples))
    user = _texts_block(instruction, responses)
    if typed:  # world knowledge only helps the judge check facts, so only these aspects get it
        for label, answers in (("Known correct answers", correct_answers), ("Known incorrect answers", incorrect_answers)):
            answers = [answers] if isinstance(answers, str) else list(answers or [])
            if answers:
                user += f"\n\n{label} (world knowledge):\n" + "\n".join(f"- {a}" for a in answers)
    n = len(responses)
    user += (f"\n\nRate all {n} text{'s' if n > 1 else ''} for {aspect}, one section each from "
             f"'#### Output for Text 1' to '#### Output for Text {n}'.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# ---- order shuffling (position bias) ----

def shuffle_order(n: int, seed: int) -> list[int]:
    """order[shown_position] = original index."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def rate_order(row_id: str, n: int, seed: int) -> list[int]:
    # hashlib, not hash(): str hashes are salted per process, which would break reproducibility
    digest = hashlib.sha256(f"{seed}\x00{row_id}".encode()).digest()
    return shuffle_order(n, int.from_bytes(digest[:8], "big"))


def _check_order(order: list[int], n: int) -> None:
    if sorted(order) != list(range(n)):
        raise ValueError(f"order {order!r} is not a permutation of 0..{n - 1}")


def apply_order(items: list, order: list[int]) -> list:
    """Original-order items -> the order they are shown in."""
    _check_order(order, len(items))
    return [items[i] for i in order]


def map_back(parsed_in_shown_order: list, order: list[int]) -> list:
    """Shown-order results -> original order: result[order[k]] = parsed[k]."""
    _check_order(order, len(parsed_in_shown_order))
    out = [None] * len(order)
    for shown, original in enumerate(order):
        out[original] = parsed_in_shown_order[shown]
    return out


# ---- parsing ----

_MD = r"[\s*_`]*"  # markdown emphasis that judges sprinkle around labels and values
# A header counts only alone on its own line, so a quoted "Output for Text 2" inside a rationale never splits sections.
_HEADER = re.compile(rf"^\s*#*{_MD}(?:output\s+for\s+)?text\s*(\d+){_MD}:?{_MD}$", re.IGNORECASE)
_LABEL = re.compile(rf"^[\s>#*_`\-]*(rating|type|rationale){_MD}:{_MD}(.*)$", re.IGNORECASE)
_VALUE = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(?:(?:/|out\s+of)\s*(\d+))?", re.IGNORECASE)


def _strip_md(s: str) -> str:
    return s.strip().strip("*_`[]()\"' ").strip()


def _parse_value(raw: str, aspect: str) -> tuple[int | None, bool, str | None]:
    """-> (rating, na, error)."""
    val = _strip_md(raw)
    # N/A alone, or followed by an explanation ("N/A - no claims made"); "N/A?" is a judge that
    # is unsure, not an answer, and stays unparsed.
    unsure = val.rstrip().endswith("?")
    if not unsure and re.match(r"^(?:n\s*/?\s*a|not\s+applicable)\s*(?:$|[.,;:()\-\u2013\u2014]|\s\w)", val, re.IGNORECASE):
        return (None, True, None) if aspect == "honesty" else (None, False, f"N/A is not allowed for {aspect}")
    m = _VALUE.match(val)
    if not m:
        return None, False, f"unparseable rating {raw.strip()[:40]!r}"
    num, den = float(m.group(1)), m.group(2)
    if den is not None and int(den) != 5:
        return None, False, f"rating on a 1-{den} scale, not 1-5"
    if num != int(num):
        return None, False, f"rating {m.group(1)} is not a whole number"
    if not 1 <= num <= 5:
        return None, False, f"rating {int(num)} out of range 1-5"
    return int(num), False, None


def _parse_type(raw: str) -> str | None:
    nums = sorted(set(re.findall(r"\b([1-3])\b", raw)))
    if nums:
        return ",".join(nums)
    return "None" if re.search(r"\bnone\b", raw, re.IGNORECASE) else None


def _blank(error: str | None) -> dict:
    return {"rating": None, "na": False, "rationale": None, "type": None, "rationale_for_type": None,
            "error": error, "note": None}


def _parse_section(lines: list[str], aspect: str) -> dict:
    res = _blank(None)
    typed = aspect in TYPED_ASPECTS
    fields = []  # (label, value) with multi-line values folded in
    for line in lines:
        m = _LABEL.match(line)
        if m:
            fields.append([m.group(1).lower(), m.group(2)])
        elif fields:
            fields[-1][1] += "\n" + line
    seen_rating = seen_type = False
    prev = None  # a Rationale explains the label just before it: Type -> rationale_for_type, Rating -> rationale
    pre_rationale = None  # a rationale with nothing before it (wrong order, still worth keeping)
    for label, value in fields:
        text = value.strip().strip("*_` ").strip() or None
        first_line = next((ln for ln in value.split("\n") if ln.strip("*_` \t")), value)
        if label == "rating" and not seen_rating:  # the FIRST rating line is the rating
            seen_rating = True
            res["rating"], res["na"], res["error"] = _parse_value(first_line, aspect)
        elif label == "type" and typed and not seen_type:
            seen_type = True
            res["type"] = _parse_type(first_line)
        elif label == "rationale":
            if prev == "rating" and res["rationale"] is None:
                res["rationale"] = text
            elif prev == "type" and typed and res["rationale_for_type"] is None:
                res["rationale_for_type"] = text
            elif pre_rationale is None:
                pre_rationale = text
        prev = label
    if res["rationale"] is None and pre_rationale is not None:
        res["rationale"] = pre_rationale
    if not seen_rating:
        res["error"] = "no Rating line in section"
    return res


def parse_ratings(text: str, n: int, aspect: str) -> list[dict]:
    """One dict per text, in shown order; sections are matched by their header number, never by position."""
    aspect = normalize_aspect(aspect)
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sections: dict[int, list[list[str]]] = {}
    current = None
    for line in lines:
        m = _HEADER.match(line)
        if m:
            current = sections.setdefault(int(m.group(1)), [])
            current.append([])
        elif current is not None:
            current[-1].append(line)
    if not sections and n == 1:  # a lone text needs no header to be unambiguous
        sections = {1: [lines]}
    out = []
    for i in range(1, n + 1):
        found = sections.get(i)
        if not found:
            out.append(_blank(f"no section for text {i}"))
            continue
        parsed = [_parse_section(s, aspect) for s in found]
        # Use the first section; a later duplicate only fills in when the first had no Rating line at all
        # (e.g. the judge quoted a header on its own line before writing the real section).
        pick = next((p for p in parsed if p["error"] != "no Rating line in section"), parsed[0])
        if len(found) > 1:
            pick["note"] = f"{len(found)} sections for text {i}; used the {'first' if pick is parsed[0] else 'first rated'}"
        out.append(pick)
    return out


def ratings_from_probs(probs_per_text: list[dict[str, float]]) -> list[dict]:
    """Per-text probabilities over "1".."5" (e.g. from a forced 'Rating: ' prefix) -> argmax and expectation."""
    out = []
    for probs in probs_per_text:
        p = {}
        for key, val in (probs or {}).items():
            k = str(key).strip()
            if k in {"1", "2", "3", "4", "5"} and isinstance(val, (int, float)) and math.isfinite(val) and val > 0:
                p[int(k)] = p.get(int(k), 0.0) + float(val)  # " 4" and "4" are both the digit 4
        total = sum(p.values())
        if total <= 0:
            out.append({"rating": None, "expected": None, "error": "no probability on 1-5"})
            continue
        best = max(sorted(p), key=lambda r: p[r])  # ties go to the lower rating
        out.append({"rating": best, "expected": round(sum(r * v for r, v in p.items()) / total, 3), "error": None})
    return out
