"""UltraCM-style critique as a pipeline step: feedback and an overall score 1-10 per response.

    - name: critique
      type: critique
      after: rate
      llm: openai:gpt-4o
      generations_column: generations     # a list of responses (or one response: a string)

Adds `critiques` (feedback per response), `overall_scores` (1-10, None where the critic gave
no readable score), `critique_errors` (why) and `critique_model`. One request per response;
a failed request fails the row, an unreadable score leaves that response unscored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notos.tasks.critique import critique_messages, parse_critique
from notos.tasks.llm_steps import Ask, LLMTask, lists, llm_step, options_of

if TYPE_CHECKING:
    from notos.pipeline.step import Step


def critique(
    llm="embedded",
    instruction_column: str = "instruction",
    generations_column: str = "generations",
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    *,
    name: str = "critique",
    **settings,
) -> Step:
    options = options_of(critique, locals())
    return llm_step(CRITIQUE, name, options, settings, inputs={instruction_column: "str", generations_column: "any"},
                    outputs=("critiques", "overall_scores", "critique_errors", "critique_model"))


def build(row: dict, *, instruction_column, generations_column, **_) -> list[Ask] | str:
    responses = row[generations_column]
    responses = [responses] if isinstance(responses, str) else list(responses or [])
    if not responses or any(not isinstance(r, str) for r in responses):
        return f"column '{generations_column}' holds no responses or a non-text one"
    return [Ask(critique_messages(row[instruction_column], r)) for r in responses]


def parse(answer, **_) -> dict:
    parsed = parse_critique(answer.texts[0])
    score = parsed["overall_score"]
    return {"critiques": parsed["critique"], "overall_scores": None if score is None else float(score),
            "critique_errors": parsed["error"]}


CRITIQUE = LLMTask("critique", build=build, parse=parse, combine=lists, model_column="critique_model")
