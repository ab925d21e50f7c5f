"""Instruction synthesis: prompt builders and tolerant parsers, all pure (no LLM, no I/O).

- Self-Instruct: new instructions from a few seed examples.
- LaMini-style: instructions steered by topics as well as examples.
- Evol-Instruct: rewrite an instruction in depth (harder) or in breadth (new, rarer), and
  WizardLM's elimination rules to drop failed evolutions.

System-prompt pools (Orca, UltraFeedback principles) and the keep/drop quality filter live in
`notos.tasks.principles` and are re-exported here so one import covers synthesis.
"""

from __future__ import annotations

import difflib
import re

from notos.tasks.principles import (  # noqa: F401  re-exported
    DEFAULT_PRINCIPLE_WEIGHTS, ORCA_SYSTEM_MESSAGES, PRINCIPLES, orca_messages, parse_quality,
    pick_principle, pick_system_message, quality_messages,
)

# ---------------------------------------------------------------- Self-Instruct / LaMini

MIN_INSTRUCTION_WORDS = 3  # shorter lines are headings, fragments or chatter, not tasks


def self_instruct_messages(seed_examples: list[str], num_instructions: int = 5, *, criteria: str | None = None) -> list[dict]:
    _check_count(num_instructions)
    examples = _numbered(seed_examples)
    extra = f"\nAlso make sure that: {criteria.strip()}\n" if criteria and criteria.strip() else ""
    user = (
        f"Below are some example tasks that people give to an AI assistant:\n\n{examples}\n\n"
        f"Invent {num_instructions} new tasks. They must not repeat or paraphrase the examples, and they "
        "should differ from each other in topic, verb and format (questions, requests to write, "
        "classify, rewrite, plan, explain, compute ...). Each one must be self-contained and answerable "
        "by a text-only assistant.\n" + extra +
        f"\nReply with the {num_instructions} tasks only, one per line, numbered 1., 2., 3. and so on, "
        "with no other text."
    )
    return [{"role": "user", "content": user}]


def lamini_messages(topics: list[str], examples: list[str], num_instructions: int = 5) -> list[dict]:
    # LaMini guides generation with topics (e.g. Wikipedia categories) as well as examples, so the
    # output spreads over subject matter instead of echoing the seed tasks' themes.
    _check_count(num_instructions)
    topic_list = "; ".join(t.strip() for t in topics if t and t.strip())
    if not topic_list:
        raise ValueError("lamini_messages needs at least one non-empty topic")
    user = (
        f"Here are examples of instructions a user might give an AI assistant:\n\n{_numbered(examples)}\n\n"
        f"Write {num_instructions} new, varied instructions in the same spirit. Each one must be about at "
        f"least one of these topics: {topic_list}. Vary the kind of request and do not copy the examples.\n\n"
        f"Reply with the {num_instructions} instructions only, one per line, numbered 1., 2., 3. and so on."
    )
    return [{"role": "user", "content": user}]


_MARKER = re.compile(r"^(?:\(?\d{1,3}[.):]|\d{1,3}\s+-|[-*+\u2022\u2013])\s+")
_LABEL = re.compile(r"^(?:new\s+)?(?:instruction|task|prompt)\s*(?:#?\d+)?(?::\s*|\.\s+|\s+-\s+)", re.I)
_CHATTER = re.compile(r"^(?:here\s+(?:are|is)|sure\b|certainly\b|okay\b|of course\b|i hope\b|let me know\b)", re.I)


def parse_instruction_list(text: str | None, max_items: int | None = None) -> list[str]:
    if not text:
        return []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    marked = any(_MARKER.match(_unbold(line).strip()) for line in lines)
    items: list[str] = []
    top_indent = None
    for raw in lines:
        line = _unbold(raw).rstrip()
        body = line.strip()
        if not body or set(body) <= set("-*=_#`"):  # blanks, rules, fences
            continue
        indent = len(line) - len(line.lstrip())
        match = _MARKER.match(body)
        if match:
            if top_indent is None:
                top_indent = indent
            # An indented bullet under an item is a detail of that item, not a new instruction.
            if items and indent > top_indent:
                items[-1] = f"{items[-1].rstrip(':')}: {body[match.end():].strip()}" if items[-1].endswith(":") \
                    else f"{items[-1]}; {body[match.end():].strip()}"
                continue
            items.append(body[match.end():].strip())
        elif marked:
            # In a list, unmarked lines are preambles/epilogues; an indented one continues an item.
            if items and indent > (top_indent or 0):
                items[-1] = f"{items[-1]} {body}"
        elif not (body.endswith(":") or _CHATTER.match(body)):
            items.append(body)
    out, seen = [], set()
    for item in items:
        item = _strip_quotes(_LABEL.sub("", item.lstrip("#").strip()))
        key = " ".join(item.lower().split()).rstrip(".?!")
        if len(item.split()) < MIN_INSTRUCTION_WORDS or key in seen:
            continue
        seen.add(key)
        out.append(item)
    return out[:max_items] if max_items is not None else out


# ---------------------------------------------------------------- Evol-Instruct

EVOL_IN_DEPTH = ("constraints", "deepen", "concretize", "reasoning", "complicate_input")
EVOL_IN_BREADTH = ("breadth",)

_DEPTH_GOALS = {
    "constraints": "Add exactly one extra constraint or requirement that the answer must satisfy.",
    "deepen": "If the prompt asks about something, widen and deepen the inquiry so a full answer needs more insight.",
    "concretize": "Replace general concepts in the prompt with more specific, concrete ones.",
    "reasoning": "If the prompt can be solved in a few simple steps, rephrase it so that it explicitly "
                 "calls for reasoning through several steps.",
    "complicate_input": "Add a piece of complex input the task must work with, such as a table, a code "
                        "snippet, a JSON object or a small data set, written out in full in the prompt.",
}


def evol_messages(instruction: str, method: str) -> list[dict]:
    if method in _DEPTH_GOALS:
        # WizardLM's in-depth rules: harder but still sensible, only 10-20 words longer, and never
        # dropping non-text parts (tables, code) of the given prompt.
        user = (
            "You rewrite prompts to make them more challenging for strong AI systems, while keeping them "
            "reasonable and answerable by a person.\n\n"
            f"How to rewrite: {_DEPTH_GOALS[method]}\n"
            "Keep every non-text part of the given prompt (tables, code, inputs). The rewrite may add "
            "only 10 to 20 words. Do not mention the words 'given prompt' or 'rewritten prompt' in it.\n\n"
            f"#Given Prompt#:\n{instruction.strip()}\n\n"
            "Reply with the rewritten prompt only.\n#Rewritten Prompt#:"
        )
    elif method in EVOL_IN_BREADTH:
        user = (
            "You create brand-new prompts for training AI assistants. Take the given prompt as "
            "inspiration: write a new prompt in the same domain but on a rarer, less common topic. "
            "It should be about as long and as hard as the given prompt, and a person must be able "
            "to understand and answer it. Do not mention the words 'given prompt' or 'created prompt' in it.\n\n"
            f"#Given Prompt#:\n{instruction.strip()}\n\n"
            "Reply with the new prompt only.\n#Created Prompt#:"
        )
    else:
        raise ValueError(f"unknown evol method {method!r}; use one of {EVOL_IN_DEPTH + EVOL_IN_BREADTH}")
    return [{"role": "user", "content": user}]


_EVOL_LABEL = re.compile(
    r"^\s*#*\s*(?:the\s+)?(?:rewritten|evolved|created|new|revised)\s+(?:prompt|instruction)"
    r"(?:\s*#+\s*[:\-]?|\s*[:\-]|\s*(?=\n))\s*", re.I)  # a label needs '#', ':' or its own line
_EVOL_PREAMBLE = re.compile(r"^(?:here\s+is|here's|sure|certainly|okay)\b[^\n]*:\s*\n", re.I)
_EVOL_TRAILER = re.compile(r"\n\s*\n\s*(?:explanation\s*:|note\s*:|this\s+(?:rewritten|evolved|new|revised)\s+"
                           r"(?:prompt|version|instruction))[\s\S]*$", re.I)
_FENCED = re.compile(r"^```[\w-]*\n([\s\S]*?)\n?```$")


def parse_evolved(text: str | None) -> str | None:
    if not text:
        return None
    out = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    for _ in range(3):  # labels, preambles and fences can nest in any order
        before = out
        out = _EVOL_PREAMBLE.sub("", _unbold(out)).strip()
        out = _EVOL_LABEL.sub("", out, count=1).strip()
        fenced = _FENCED.match(out)  # only a fence around everything; inner code blocks are content
        if fenced:
            out = fenced.group(1).strip()
        out = _strip_quotes(_EVOL_TRAILER.sub("", out).strip())
        if out == before:
            break
    return out or None


NEAR_IDENTICAL_RATIO = 0.95
REFUSAL_MAX_WORDS = 80  # WizardLM: an answer with "sorry" and fewer than 80 words means the model struggled
_SCAFFOLDING = ("#rewritten prompt#", "#given prompt#", "#created prompt#", "given prompt", "rewritten prompt",
                "created prompt", "#the given prompt#")
_REFUSAL = re.compile(r"\bi(?:'m| am) (?:unable|not able) to\b|\bi (?:cannot|can't|can not|won't) "
                      r"(?:help|assist|provide|answer|comply|fulfil|do that)", re.I)
_STOP_WORDS = frozenset(
    "a an the and or but if then so of to in on at by for with from as is are was were be been it its this that "
    "these those i you he she we they me him her us them my your our their not no yes ok okay".split())


def evolution_failed(original: str, evolved: str | None, answer: str | None = None) -> str | None:
    """Why an evolution must be dropped (WizardLM's elimination rules), or None to keep it."""
    if evolved is None or not evolved.strip():
        return "empty evolution"
    a, b = _norm(original), _norm(evolved)
    if a == b:
        return "evolution is identical to the original"
    if difflib.SequenceMatcher(None, a, b).ratio() > NEAR_IDENTICAL_RATIO:
        return "evolution is nearly identical to the original (no information gain)"
    low, orig_low = evolved.lower(), original.lower()
    for word in _SCAFFOLDING:
        if word in low and word not in orig_low:  # a prompt genuinely about "given prompts" is fine
            return f"evolution copies prompt scaffolding ({word!r})"
    if answer is None:
        return None
    words = re.findall(r"[a-z0-9']+", answer.lower())
    if not words or all(w in _STOP_WORDS for w in words):
        return "answer contains only punctuation or stop words"
    # "sorry" or "as an AI" in a long answer is usually a polite preface to a real answer.
    if ("sorry" in words or "as an ai" in " ".join(words)) and len(answer.split()) < REFUSAL_MAX_WORDS:
        return "answer is a short apology: the evolved instruction is too hard to answer"
    if _REFUSAL.search(answer[:200]):  # a refusal opens the answer; later hedges are normal prose
        return "answer is a refusal"
    return None


# ---------------------------------------------------------------- helpers

def _check_count(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"num_instructions must be a positive integer, got {n!r}")


def _numbered(examples: list[str]) -> str:
    cleaned = [" ".join(e.split()) for e in examples if e and e.strip()]
    if not cleaned:
        raise ValueError("at least one non-empty example is needed")
    return "\n".join(f"{i}. {e}" for i, e in enumerate(cleaned, 1))


def _unbold(text: str) -> str:
    return re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)


def _strip_quotes(text: str) -> str:
    pairs = {'"': '"', "'": "'", "\u201c": "\u201d", "`": "`"}
    while len(text) >= 2 and pairs.get(text[0]) == text[-1] and text[0] not in text[1:-1]:
        text = text[1:-1].strip()
    return text


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
