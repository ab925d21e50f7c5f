"""Does a rationale read positive or negative? A small lexicon, run as RE2 kernels over a column.

Cues match whole words (a cue ending in \\w* covers its inflections: "hallucinat\\w*" matches
"hallucinates" and "hallucinations", never a longer unrelated word).

Why a lexicon: UltraFeedback's rationales are short, formulaic judge text ("The text contains
severe hallucinations", "fully aligns with the task goal"), so a few dozen cues catch the Notus
case (a high rating whose own rationale tears the answer apart) without an LLM. A column of
texts goes through four pyarrow compute calls (lower-case, one rewrite, two counts), never a
Python loop per text; chunks run on a thread pool because the kernels release the GIL.

How one text is read, after lower-casing:
  - a negation ("not", "no", "never", "without", "free of", "lacks", "...n't") followed, within
    two words and inside the clause, by a cue flips that cue: "no hallucinations", "free of
    errors or fabrications", "not incorrect" count positive; "not accurate", "lacks accuracy",
    "does not address" count negative. The nearest cue after the negation is the one flipped.
  - a softener ("slight", "minor", "mostly", "partially", ...) and the cue right after it count
    for neither side: "minor errors" is what a 4 looks like, not a contradiction of it.
  - "not only", "not just" and "no doubt" are no negations.
  - every other cue counts as written. The text reads positive if it has more positive than
    negative cues, negative if fewer, neither on a tie.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NEGATIVE_CUES = (
    r"incorrect\w*", r"inaccura\w*", r"wrong\w*", r"irrelevan\w*", r"hallucinat\w*", r"mislead\w*",
    r"fabricat\w*", r"contradict\w*", r"severe\w*", r"fail(?:s|ed|ing)? to", r"unhelpful", r"untruthful\w*",
    r"erroneous", r"errors?", r"mistakes?", r"flaw(?:s|ed)?", r"nonsens\w*", r"off-topic", r"poor\w*",
    r"deviat\w*", r"unreliable", r"baseless", r"unsupported", r"confusing", r"incomplete", r"vague",
    r"unclear", r"ignor(?:es|ed|ing)", r"useless", r"misinformation", r"made-up", r"invented",
)
POSITIVE_CUES = (
    r"accura(?:te|tely|cy)\b", r"correct(?:ly|ness)?\b", r"fully align\w*", r"aligns? well",
    r"comprehensive\w*", r"excellent\w*", r"highly informative", r"informative\b", r"outstanding\w*",
    r"thorough\w*", r"precise\w*", r"truthful\w*", r"helpful\w*", r"relevant\b", r"reliable\b",
    r"insightful", r"valuable", r"well-(?:written|structured|organized|reasoned)", r"flawless\w*",
    r"meets? (?:all|the) (?:requirements|criteria|goals?|restrictions)", r"adheres? to", r"faithful\w*",
)
# Verbs that say nothing alone ("addresses the question") but are damning negated.
NEGATED_ONLY_CUES = (r"address\w*", r"follow\w*", r"answer\w*", r"meet\w*", r"adher\w*", r"comply\w*",
                     r"fulfil\w*", r"satisf\w*", r"respond\w*", r"align\w*")
NEGATIONS = (
    r"not", r"no", r"never", r"without", r"nor", r"neither", r"hardly", r"barely", r"cannot",
    r"lacks?", r"lacking", r"absence of", r"absent", r"devoid of", r"free (?:of|from)", r"[a-z]+n['’]t",
)
SOFTENERS = (
    r"slight(?:ly)?", r"minor", r"insignificant", r"negligible", r"small", r"few", r"some", r"occasional",
    r"partial(?:ly)?", r"mostly", r"minimal", r"little", r"tiny", r"somewhat",
)
NOT_NEGATIONS = (r"not only", r"not just", r"no doubt")


def _any(words) -> str:
    # Whole words only: "flaw" must not fire inside "flawless", nor "errors?" inside "Errorsome".
    return r"\b(?:" + "|".join(words) + r")\b"


_WORD = r"[a-z0-9_'’-]+"
NEGATIVE_RE = _any(NEGATIVE_CUES)
POSITIVE_RE = _any(POSITIVE_CUES)
_FLIPPABLE_POSITIVE = _any(POSITIVE_CUES + NEGATED_ONLY_CUES)
_NEGATION = _any(NEGATIONS) + r"\b"


def _chain(cue: str) -> str:
    # "no errors or hallucinations" is one negated scope, not a negated error and a plain hallucination.
    return cue + r"(?:\s*,?\s+(?:and|or|nor)\s+(?:" + _WORD + r"\s+)?" + cue + ")*"


# One rewrite turns every scope into a marker with no letters, whose shape says what it counts as:
# "\x01 \x02\x03" a negated negative (counts positive), "\x01\x02 \x03" a negated positive
# (counts negative), "\x01\x02\x03" neutral. Group 1 or 2 captures one whitespace character.
SCOPE_RE = (
    _any(NOT_NEGATIONS) + r"\b"
    + "|" + _NEGATION + r"(?:\s+" + _WORD + r"){0,2}?(?:(\s)\s*" + _chain(NEGATIVE_RE)
    + r"|(\s)\s*" + _chain(_FLIPPABLE_POSITIVE) + ")"
    + "|" + _any(SOFTENERS) + r"\b(?:\s+" + _WORD + r")?\s+(?:" + NEGATIVE_RE + "|" + POSITIVE_RE + ")"
)
_SCOPE_MARKERS = "\x01\\1\x02\\2\x03"
_COUNT_POSITIVE = r"\x01\s|" + POSITIVE_RE
_COUNT_NEGATIVE = r"\x02\s|" + NEGATIVE_RE
_CHUNK = 32_768
_NEGATED_POSITIVE = _NEGATION + r"(?:\s+" + _WORD + r"){0,2}?\s+" + _FLIPPABLE_POSITIVE + r"\w*"
_NEGATED_NEGATIVE = _NEGATION + r"(?:\s+" + _WORD + r"){0,2}?\s+" + NEGATIVE_RE
# Necessary for a text to read negative (positive): a plain cue of that side or a flipped one.
_MAYBE_NEGATIVE = NEGATIVE_RE + "|" + _NEGATED_POSITIVE
_MAYBE_POSITIVE = POSITIVE_RE + "|" + _NEGATED_NEGATIVE


def polarity(texts: pa.Array | pa.ChunkedArray, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) cue counts per text; a null text counts 0 and 0."""
    counts = _on_chunks(_polarity_chunk, texts, threads, empty=np.zeros((2, 0), np.int32))
    return counts[0], counts[1]


def reads(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per text: +1 reads positive, -1 reads negative, 0 neither (no cues, or as many of each)."""
    positive, negative = polarity(texts)
    return np.sign(positive - negative).astype(np.int8)


def reads_negative(texts: pa.Array | pa.ChunkedArray, threads: int | None = None) -> np.ndarray:
    """Per text: True where it reads negative (what a high rating's rationale should not)."""
    return _on_chunks(lambda chunk: _reads_side(chunk, negative=True), texts, threads, empty=np.zeros(0, bool))


def reads_positive(texts: pa.Array | pa.ChunkedArray, threads: int | None = None) -> np.ndarray:
    """Per text: True where it reads positive (what a low rating's rationale should not)."""
    return _on_chunks(lambda chunk: _reads_side(chunk, negative=False), texts, threads, empty=np.zeros(0, bool))


def _on_chunks(fn, texts, threads, empty: np.ndarray) -> np.ndarray:
    """fn over slices of the texts on a thread pool, results joined along the last axis."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if len(texts) == 0:
        return empty
    chunks = [texts.slice(start, _CHUNK) for start in range(0, len(texts), _CHUNK)]
    threads = min(len(chunks), threads or os.cpu_count() or 1)
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            return np.concatenate(list(pool.map(fn, chunks)), axis=-1)
    return np.concatenate([fn(chunk) for chunk in chunks], axis=-1)


def _polarity_chunk(texts: pa.Array) -> np.ndarray:
    rewritten = pc.replace_substring_regex(pc.ascii_lower(texts), SCOPE_RE, _SCOPE_MARKERS)
    return np.stack([_count(rewritten, _COUNT_POSITIVE), _count(rewritten, _COUNT_NEGATIVE)])


def _reads_side(texts: pa.Array, negative: bool) -> np.ndarray:
    # Why the detour: the scope rewrite is the expensive kernel (captures), so it only runs on
    # texts that can read this way at all (a cue of this side, plain or flipped: a cheap DFA
    # match), and the other side is only counted where this side has a cue left after it.
    lower = pc.ascii_lower(texts)
    out = np.zeros(len(texts), bool)
    maybe = pc.match_substring_regex(lower, _MAYBE_NEGATIVE if negative else _MAYBE_POSITIVE).fill_null(False)
    rows = np.flatnonzero(maybe.to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return out
    rewritten = pc.replace_substring_regex(lower.take(pa.array(rows)), SCOPE_RE, _SCOPE_MARKERS)
    this, other = (_COUNT_NEGATIVE, _COUNT_POSITIVE) if negative else (_COUNT_POSITIVE, _COUNT_NEGATIVE)
    this_count = _count(rewritten, this)
    some = np.flatnonzero(this_count > 0)
    other_count = _count(rewritten.take(pa.array(some)), other)
    out[rows[some]] = this_count[some] > other_count
    return out


def _count(texts: pa.Array, pattern: str) -> np.ndarray:
    counts = pc.count_substring_regex(texts, pattern).fill_null(0)
    return counts.to_numpy(zero_copy_only=False).astype(np.int32)


def first_cue(texts: pa.Array, negative: bool) -> list[str | None]:
    """A cue behind each text's reading (its first plain cue of that side, else a flipped one).

    For a reason a human reads; meant for the few texts already flagged.
    """
    lower = pc.ascii_lower(texts)
    plain = pc.replace_substring_regex(lower, SCOPE_RE, _SCOPE_MARKERS)
    direct, flipped = (NEGATIVE_RE, _NEGATED_POSITIVE) if negative else (POSITIVE_RE, _NEGATED_NEGATIVE)
    found = pc.struct_field(pc.extract_regex(plain, f"(?P<cue>{direct})"), "cue").to_pylist()
    other = pc.struct_field(pc.extract_regex(lower, f"(?P<cue>{flipped})"), "cue").to_pylist()
    return [a if a is not None else b for a, b in zip(found, other)]
