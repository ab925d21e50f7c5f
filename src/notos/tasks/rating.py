"""UltraFeedback rating as a pipeline step: N responses to one instruction, rated 1-5 per aspect.

    - name: rate
      type: ultrafeedback_rating
      after: combine
      llm: openai:gpt-4o            # a strong judge; the embedded model shows the mechanics only
      aspects: overall-rating       # or a list, or `all` (the four UltraFeedback aspects)
      mode: auto                    # text: the judge writes sections; logprob: P("1".."5");
                                    # auto: logprob on local models, text on servers
      correct_answers_column: correct_answers      # optional world knowledge (TruthfulQA, FalseQA):
      incorrect_answers_column: incorrect_answers  # shown to the truthfulness / helpfulness judge
                                    # where a row has a value; rows (or inputs) without it rate without

Columns added, per aspect (one aspect: `ratings`, `rationales`; several: `ratings_<aspect>`...):
ratings (list, one per response, None where the judge gave none), ratings_expected (the
expectation over "1".."5" in logprob mode, the rating itself in text mode), rationales, types and
type_rationales (truthfulness, helpfulness), rating_errors (why a response got no rating),
plus `rating_model` and `rating_raw` (the judge's text per aspect, kept for re-parsing).
The responses are shown in a seeded per-row order (position bias) and mapped back, so a
rating always lands on its own response. A failed request fails the row; an unparseable
section only leaves that response unrated, with the reason.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from notos.errors import GraphError
import notos.tasks.ultrafeedback as uf
from notos.tasks.llm_steps import Ask, LLMTask, llm_step, options_of, resolve_mode

if TYPE_CHECKING:
    from notos.pipeline.step import Step

FOUR = ("instruction-following", "honesty", "truthfulness", "helpfulness")
CANDIDATES = ("1", "2", "3", "4", "5")


def _aspect_list(aspects) -> list[str]:
    if aspects == "all":
        return list(FOUR)
    names = [aspects] if isinstance(aspects, str) else list(aspects or [])
    if not names:
        raise ValueError("aspects must name at least one aspect")
    return [uf.normalize_aspect(a) for a in names]


def column_names(aspects: list[str]) -> dict[str, dict[str, str]]:
    """aspect -> {field: column}: plain names for one aspect, suffixed by aspect for several."""
    # ratings_expected in both modes (the rating itself in text mode): one schema downstream.
    fields = ["ratings", "ratings_expected", "rationales", "rating_errors"]
    names = {}
    for aspect in aspects:
        own = fields + (["types", "type_rationales"] if aspect in uf.TYPED_ASPECTS else [])
        suffix = "" if len(aspects) == 1 else "_" + aspect.replace("-", "_")
        names[aspect] = {f: f + suffix for f in own}
    return names


def ultrafeedback_rating(
    llm="embedded",
    aspects="overall-rating",
    instruction_column: str = "instruction",
    generations_column: str = "generations",
    mode: str = "auto",
    shuffle: bool = True,
    seed: int = 0,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    correct_answers_column: str | None = None,
    incorrect_answers_column: str | None = None,
    *,
    name: str = "ultrafeedback_rating",
    **settings,
) -> Step:
    options = options_of(ultrafeedback_rating, locals())
    try:
        options["aspects"] = _aspect_list(aspects)
    except ValueError as exc:
        raise GraphError(f"step '{name}': {exc}") from None
    if mode not in ("auto", "text", "logprob"):
        raise GraphError(f"step '{name}': option 'mode' must be auto, text or logprob, got {mode!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise GraphError(f"step '{name}': option 'seed' must be an integer, got {seed!r}")
    # World-knowledge columns are optional: used where a row has them (TruthfulQA, FalseQA), so
    # they are not declared inputs; plain prompts (`id`, `instruction`) rate without them.
    inputs = {instruction_column: "str", generations_column: "list"}
    columns = column_names(options["aspects"])
    outputs = [c for names in columns.values() for c in names.values()] + ["rating_model", "rating_raw"]
    return llm_step(RATING, name, options, settings, inputs=inputs, outputs=outputs)


def _order(row: dict, generations_column: str, shuffle: bool, seed: int) -> list[int]:
    """The seeded per-row order the judge sees the responses in (position bias)."""
    n = len(row[generations_column])
    return uf.rate_order(row["row_id"], n, seed) if shuffle else list(range(n))


def build(row: dict, *, aspects, instruction_column, generations_column, mode, shuffle, seed, llm,
          correct_answers_column, incorrect_answers_column, **_) -> list[Ask] | str:
    """Text mode: one request per aspect, the judge writes a section per response. Logprob mode:
    per aspect and shown text k, "#### Output for Text k / Rating: " forced and P("1".."5") read;
    local backends compute each (row, aspect) prompt once for all its texts."""
    responses = row[generations_column]
    if not responses or any(r is None for r in responses):
        return f"column '{generations_column}' holds no responses or a missing one"
    shown = uf.apply_order([str(g) for g in responses], _order(row, generations_column, shuffle, seed))
    knowledge = {}  # only where this row has the column and a value in it
    for field, column in (("correct_answers", correct_answers_column), ("incorrect_answers", incorrect_answers_column)):
        value = row.get(column) if column else None
        if value is not None and not (isinstance(value, float) and math.isnan(value)):  # NaN from CSV/pandas
            knowledge[field] = value
    text = resolve_mode(mode, llm) == "text"
    asks = []
    for aspect in aspects:
        messages = uf.build_messages(aspect, row[instruction_column], shown, examples=text, **knowledge)
        if text:
            asks.append(Ask(messages, key=aspect))
        else:
            asks += [Ask(messages, key=aspect, candidates=CANDIDATES, prefix=f"#### Output for Text {k + 1}\nRating: ")
                     for k in range(len(shown))]
    return asks


def parse(answer, *, key, row, generations_column, **_) -> dict:
    """{aspect, raw, sections}: the judge's text and one parsed section per response it covers,
    in shown order (every response in text mode, the one scored in logprob mode)."""
    if hasattr(answer, "texts"):
        sections = uf.parse_ratings(answer.texts[0], len(row[generations_column]), key)
        for s in sections:
            s["expected"] = None if s["rating"] is None else float(s["rating"])
        return {"aspect": key, "raw": answer.texts[0], "sections": sections}
    return {"aspect": key, "raw": None, "sections": [{**uf.ratings_from_probs([answer.probs])[0], "rationale": None}]}


SECTION_KEYS = {"ratings": "rating", "rationales": "rationale", "rating_errors": "error", "types": "type",
                "type_rationales": "rationale_for_type", "ratings_expected": "expected"}


def combine(parsed: list[dict], *, row, aspects, generations_column, shuffle, seed, **_) -> dict:
    """Each aspect's sections mapped back from the shown order, so a rating lands on its own response."""
    order = _order(row, generations_column, shuffle, seed)
    names = column_names(aspects)
    out = {"rating_raw": {}}
    for aspect in aspects:
        mine = [p for p in parsed if p["aspect"] == aspect]
        out["rating_raw"][aspect] = mine[0]["raw"]
        sections = uf.map_back([s for p in mine for s in p["sections"]], order)
        for field, column in names[aspect].items():
            out[column] = [s.get(SECTION_KEYS[field]) for s in sections]
    return out


RATING = LLMTask("ultrafeedback_rating", build=build, parse=parse, combine=combine, model_column="rating_model")
