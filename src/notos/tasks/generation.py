"""Text generation: an instruction (and optional system prompt) in, one or more answers out,
with the model that wrote them and the tokens it used.

    - name: answer
      type: text_generation
      after: prompts
      llm: embedded                 # or openai:gpt-4o-mini, http://host/v1, {backend: ...}
      num_generations: 1
      temperature: 0.7
      max_new_tokens: 256

Adds `generation` (a list when num_generations > 1), `model_name`, `finish_reason` and
`usage` ({prompt_tokens, completion_tokens}). With `system_prompt_pool: principles` each row is
answered under a system prompt drawn for it (UltraFeedback's principles: helpfulness, honesty,
truthfulness, verbalized calibration; weights in `principle_weights`), or `orca` (explain step
by step ...); the draw is seeded by the row and `pool_seed` (default: the step's name), so each
generator of a pool draws on its own, and `principle` and `system_prompt` record what was used.
`context_column` holds earlier [user, assistant] turns to answer after (MT-Bench's second turn),
`temperature_column` a row's own temperature (None: the step's). A request that fails, or an
empty answer, fails only its row, with the reason in `_error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notos.errors import GraphError
from notos.tasks.llm_steps import Ask, LLMTask, llm_step, options_of

if TYPE_CHECKING:
    from notos.pipeline.step import Step


def text_generation(
    llm="embedded",
    instruction_column: str = "instruction",
    system_prompt: str | None = None,
    system_prompt_column: str | None = None,
    output_column: str = "generation",
    num_generations: int = 1,
    max_new_tokens: int = 256,
    temperature: float = 0.7,
    top_p: float = 1.0,
    stop: list[str] | None = None,
    seed: int | None = None,
    logprobs: bool = False,
    allow_empty: bool = False,
    system_prompt_pool: str | None = None,
    principle_weights: dict | None = None,
    pool_seed: str | int | None = None,
    context_column: str | None = None,
    temperature_column: str | None = None,
    *,
    name: str = "text_generation",
    **settings,
) -> Step:
    options = options_of(text_generation, locals())
    options["pool_seed"] = name if pool_seed is None else pool_seed
    check_pool(name, system_prompt_pool, principle_weights, system_prompt, system_prompt_column)
    inputs = {instruction_column: "str"}
    if system_prompt_column:
        inputs[system_prompt_column] = "str?"  # null: no system prompt for that row
    if context_column:
        inputs[context_column] = "list?"  # null: no earlier turns
    if temperature_column:
        inputs[temperature_column] = "float?"  # null: the step's temperature
    outputs = [output_column, "model_name", "finish_reason", "usage"] + (["logprobs"] if logprobs else [])
    if system_prompt_pool:
        outputs += ["principle", "system_prompt"]
    return llm_step(GENERATION, name, options, settings, inputs=inputs, outputs=outputs)


def check_pool(name: str, pool, weights, system_prompt, system_prompt_column) -> None:
    from notos.tasks.principles import pick_principle

    if pool is None:
        return
    if pool not in ("principles", "orca"):
        raise GraphError(f"step '{name}': option 'system_prompt_pool' must be principles or orca, got {pool!r}")
    if system_prompt or system_prompt_column:
        raise GraphError(f"step '{name}': option 'system_prompt_pool' replaces system_prompt / system_prompt_column: set only one")
    if weights is not None:
        try:
            pick_principle("check", 0, dict(weights))
        except (ValueError, TypeError) as exc:
            raise GraphError(f"step '{name}': option 'principle_weights': {exc}") from None


def draw_principles(rows: list[dict], *, system_prompt_pool, principle_weights, pool_seed, **_) -> list[dict]:
    """Each row's system prompt from the pool, keyed by the step's pool_seed and the row: each
    generator of a pool draws on its own."""
    from notos.tasks.principles import draw_system_prompt

    if not system_prompt_pool:
        return list(rows)
    drawn = [draw_system_prompt(f"{pool_seed}:{r['row_id']}", system_prompt_pool, principle_weights) for r in rows]
    return [{**r, "principle": principle, "system_prompt": prompt} for r, (principle, prompt) in zip(rows, drawn)]


def build_conversation(row: dict, instruction_column: str, system_prompt: str | None, system_prompt_column: str | None,
                       context_column: str | None = None) -> list[dict]:
    """[system], earlier (user, assistant) turns from `context_column` (MT-Bench turn 2), the instruction."""
    system = row.get(system_prompt_column) if system_prompt_column else system_prompt
    messages = [{"role": "system", "content": system}] if system else []
    for user, assistant in (row.get(context_column) or []) if context_column else []:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages + [{"role": "user", "content": row[instruction_column]}]


def build(row: dict, *, instruction_column, system_prompt, system_prompt_column, context_column, temperature_column,
          system_prompt_pool, **_) -> list[Ask] | str:
    column = "system_prompt" if system_prompt_pool else system_prompt_column
    messages = build_conversation(row, instruction_column, system_prompt, column, context_column)
    return [Ask(messages, temperature=row.get(temperature_column) if temperature_column else None)]


def parse(answer, *, output_column, num_generations, logprobs, allow_empty, **_) -> dict | str:
    texts, reasons = answer.texts, answer.finish_reasons
    if len(texts) != num_generations:
        return f"asked for {num_generations} generations, the backend returned {len(texts)} (does the server support n?)"
    if not allow_empty and not any(t.strip() for t in texts):
        return f"empty generation (finish_reason {', '.join(reasons) or 'none'})"
    single = num_generations == 1
    columns = {output_column: texts[0] if single else texts, "finish_reason": reasons[0] if single else reasons}
    if logprobs:
        per_text = [[{"token": t, "logprob": lp} for t, lp in tokens] for tokens in answer.token_logprobs or [[]]]
        columns["logprobs"] = per_text[0] if single else per_text
    return columns


GENERATION = LLMTask(
    "text_generation", build=build, parse=parse, model_column="model_name", usage_column="usage", prepare=draw_principles,
    params=("num_generations", "max_new_tokens", "temperature", "top_p", "stop", "seed", "logprobs"),
)
