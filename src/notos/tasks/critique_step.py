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
from notos.tasks.llm_steps import check_llm, check_params, llm_step

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
    check_llm(name, llm)
    check_params(name, max_new_tokens=max_new_tokens, temperature=temperature)
    options = {"llm": llm, "instruction_column": instruction_column, "generations_column": generations_column,
               "max_new_tokens": max_new_tokens, "temperature": temperature}
    return llm_step(name=name, fn=critique_batch, inputs={instruction_column: "str", generations_column: "any"},
                    outputs=("critiques", "overall_scores", "critique_errors", "critique_model"), options=options,
                    type_name="critique", settings=settings)


async def critique_batch(rows: list[dict], *, llm, instruction_column, generations_column, max_new_tokens, temperature) -> list[dict]:
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    critic = await get_llm_async(llm)
    out = [{**row, "critique_model": critic.model_name, "_tokens": 0} for row in rows]
    # One request per (row, response), all in one call so the backend can batch them.
    pairs = []
    for i, row in enumerate(rows):
        responses = row[generations_column]
        responses = [responses] if isinstance(responses, str) else list(responses or [])
        if not responses or any(not isinstance(r, str) for r in responses):
            out[i]["_error"] = f"column '{generations_column}' holds no responses or a non-text one"
            continue
        pairs.extend((i, k, critique_messages(row[instruction_column], r)) for k, r in enumerate(responses))
        out[i].update(critiques=[None] * len(responses), overall_scores=[None] * len(responses),
                      critique_errors=[None] * len(responses))
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    results = await critic.generate([messages for _, _, messages in pairs], params)
    for (i, k, _), result in zip(pairs, results):
        out[i]["_tokens"] += result.prompt_tokens + result.completion_tokens
        if result.error:
            out[i]["_error"] = result.error
            continue
        parsed = parse_critique(result.texts[0])
        out[i]["critiques"][k] = parsed["critique"]
        out[i]["overall_scores"][k] = None if parsed["overall_score"] is None else float(parsed["overall_score"])
        out[i]["critique_errors"][k] = parsed["error"]
    return out
