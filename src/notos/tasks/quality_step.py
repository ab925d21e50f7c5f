"""OpenBezoar's "LLM as a human proxy": a judge keeps or drops each instruction-response pair.

    - name: judge
      type: quality_filter
      after: answer
      llm: openai:gpt-4o-mini
      response_column: generation
      min_score: 6            # optional: decide by the 1-10 score instead of the verdict
    - {name: kept, type: filter_rows, after: judge, column: quality_keep, op: "==", value: true}

Adds `quality_keep` (True / False, None when the judge gave no readable verdict),
`quality_score` (1-10 or None), `quality_reason`, `quality_error` and `quality_model`. An
unreadable verdict never fails the row: it stays, flagged. By default every row passes, so the
judge's reasons stay in this step's stored output and a later `filter_rows` drops; with
`drop: true` this step drops the rows judged DROP itself and logs how many and why.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from notos.errors import GraphError
from notos.tasks.llm_steps import Ask, LLMTask, drop_rows, llm_step, options_of
from notos.tasks.principles import parse_quality, quality_messages

if TYPE_CHECKING:
    from notos.pipeline.step import Step

log = logging.getLogger("notos")


def quality_filter(
    llm="embedded",
    instruction_column: str = "instruction",
    response_column: str = "generation",
    rubric: str | None = None,
    min_score: int | None = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    drop: bool = False,
    *,
    name: str = "quality_filter",
    **settings,
) -> Step:
    options = options_of(quality_filter, locals())
    if rubric is not None and not isinstance(rubric, str):
        raise GraphError(f"step '{name}': option 'rubric' must be a text, got {rubric!r}")
    if min_score is not None and not (isinstance(min_score, int) and not isinstance(min_score, bool) and 1 <= min_score <= 10):
        raise GraphError(f"step '{name}': option 'min_score' must be an integer from 1 to 10, got {min_score!r}")
    if not isinstance(drop, bool):
        raise GraphError(f"step '{name}': option 'drop' must be true or false, got {drop!r}")
    return llm_step(QUALITY, name, options, settings, inputs={instruction_column: "str", response_column: "str"},
                    outputs=("quality_keep", "quality_score", "quality_reason", "quality_error", "quality_model"))


def build(row: dict, *, instruction_column, response_column, rubric, **_) -> list[Ask]:
    return [Ask(quality_messages(row[instruction_column], row[response_column], rubric))]


def parse(answer, *, min_score, **_) -> dict:
    verdict = parse_quality(answer.texts[0], min_score)
    return {"quality_keep": verdict["keep"], "quality_score": verdict["score"],
            "quality_reason": verdict["reason"], "quality_error": verdict["error"]}


def drop_judged(rows: list[dict], *, drop, **_) -> list[dict]:
    """With `drop: true`, the rows judged DROP go, and the log says how many and why."""
    dropped = [r for r in rows if r.get("quality_keep") is False] if drop else []
    if dropped:
        reasons = Counter(r["quality_reason"] or "(no reason given)" for r in dropped)
        log.info("quality_filter: dropped %d of %d rows judged DROP; most common reasons: %s", len(dropped), len(rows),
                 "; ".join(f"{n} x {why[:120]}" for why, n in reasons.most_common(3)))
    return drop_rows(rows, dropped)


QUALITY = LLMTask("quality_filter", build=build, parse=parse, finish=drop_judged, model_column="quality_model")
