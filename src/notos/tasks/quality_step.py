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
from notos.tasks.llm_steps import check_llm, check_params, llm_step
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
    check_llm(name, llm)
    check_params(name, max_new_tokens=max_new_tokens, temperature=temperature)
    if rubric is not None and not isinstance(rubric, str):
        raise GraphError(f"step '{name}': option 'rubric' must be a text, got {rubric!r}")
    if min_score is not None and not (isinstance(min_score, int) and not isinstance(min_score, bool) and 1 <= min_score <= 10):
        raise GraphError(f"step '{name}': option 'min_score' must be an integer from 1 to 10, got {min_score!r}")
    if not isinstance(drop, bool):
        raise GraphError(f"step '{name}': option 'drop' must be true or false, got {drop!r}")
    options = {"llm": llm, "instruction_column": instruction_column, "response_column": response_column,
               "rubric": rubric, "min_score": min_score, "max_new_tokens": max_new_tokens,
               "temperature": temperature, "drop": drop}
    outputs = ("quality_keep", "quality_score", "quality_reason", "quality_error", "quality_model")
    return llm_step(name=name, fn=quality_batch, inputs={instruction_column: "str", response_column: "str"},
                    outputs=outputs, options=options, type_name="quality_filter", settings=settings)


async def quality_batch(rows: list[dict], *, llm, instruction_column, response_column, rubric, min_score,
                        max_new_tokens, temperature, drop) -> list[dict]:
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    judge = await get_llm_async(llm)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    conversations = [quality_messages(r[instruction_column], r[response_column], rubric) for r in rows]
    results = await judge.generate(conversations, params)
    out = []
    for row, result in zip(rows, results):
        new = {**row, "quality_model": judge.model_name, "_tokens": result.prompt_tokens + result.completion_tokens}
        if result.error:
            new["_error"] = result.error
        else:
            verdict = parse_quality(result.texts[0], min_score)
            new.update(quality_keep=verdict["keep"], quality_score=verdict["score"],
                       quality_reason=verdict["reason"], quality_error=verdict["error"])
        out.append(new)
    if not drop:
        return out
    dropped = [r for r in out if r.get("quality_keep") is False]
    if dropped:
        reasons = Counter(r["quality_reason"] or "(no reason given)" for r in dropped)
        log.info("quality_filter: dropped %d of %d rows judged DROP; most common reasons: %s", len(dropped), len(rows),
                 "; ".join(f"{n} x {why[:120]}" for why, n in reasons.most_common(3)))
    kept = [r for r in out if r.get("quality_keep") is not False]
    # The judge's tokens for dropped rows were still spent: count them on a kept row.
    if kept:
        kept[0]["_tokens"] += sum(r["_tokens"] for r in dropped)
    return kept
