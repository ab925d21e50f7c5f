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
generator of a pool draws on its own, and `principle` and `system_prompt` record what was used. A request that fails, or an empty answer,
fails only its row, with the reason in `_error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notos.errors import GraphError
from notos.tasks.llm_steps import check_llm, check_params, llm_step

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
    check_llm(name, llm)
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise GraphError(f"step '{name}': option 'stop' must be a list of strings")
    check_params(name, num_generations=num_generations, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise GraphError(f"step '{name}': option 'seed' must be an integer, got {seed!r}")
    check_pool(name, system_prompt_pool, principle_weights, system_prompt, system_prompt_column)
    inputs = {instruction_column: "str"}
    if system_prompt_column:
        inputs[system_prompt_column] = "str"
    if context_column:
        inputs[context_column] = "list"
    if temperature_column:
        inputs[temperature_column] = "float"
    outputs = [output_column, "model_name", "finish_reason", "usage"] + (["logprobs"] if logprobs else [])
    if system_prompt_pool:
        outputs += ["principle", "system_prompt"]
    options = {
        "llm": llm, "instruction_column": instruction_column, "system_prompt": system_prompt,
        "system_prompt_column": system_prompt_column, "output_column": output_column,
        "num_generations": num_generations, "max_new_tokens": max_new_tokens, "temperature": temperature,
        "top_p": top_p, "stop": stop, "seed": seed, "logprobs": logprobs, "allow_empty": allow_empty,
        "system_prompt_pool": system_prompt_pool, "principle_weights": principle_weights, "pool_seed": name if pool_seed is None else pool_seed,
        "context_column": context_column, "temperature_column": temperature_column,
    }
    return llm_step(name=name, fn=generate_batch, inputs=inputs, outputs=outputs, options=options,
                    type_name="text_generation", settings=settings)


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


def build_conversation(row: dict, instruction_column: str, system_prompt: str | None, system_prompt_column: str | None,
                       context_column: str | None = None) -> list[dict]:
    """[system], earlier (user, assistant) turns from `context_column` (MT-Bench turn 2), the instruction."""
    system = row.get(system_prompt_column) if system_prompt_column else system_prompt
    messages = [{"role": "system", "content": system}] if system else []
    for user, assistant in (row.get(context_column) or []) if context_column else []:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages + [{"role": "user", "content": row[instruction_column]}]


async def generate_by_temperature(client, conversations: list, params, temperatures: list) -> list:
    """One request per temperature in the batch (a per-row temperature, e.g. MT-Bench's per category);
    rows without one use the step's."""
    import asyncio
    from dataclasses import replace

    groups: dict = {}
    for i, value in enumerate(temperatures):
        groups.setdefault(params.temperature if value is None else float(value), []).append(i)
    results: list = [None] * len(conversations)
    answers = await asyncio.gather(*(client.generate([conversations[i] for i in idx], replace(params, temperature=temp))
                                     for temp, idx in groups.items()))
    for idx, group_results in zip(groups.values(), answers):
        for i, result in zip(idx, group_results):
            results[i] = result
    return results


async def generate_batch(rows: list[dict], *, llm, instruction_column, system_prompt, system_prompt_column, output_column,
                         num_generations, max_new_tokens, temperature, top_p, stop, seed, logprobs, allow_empty,
                         system_prompt_pool=None, principle_weights=None, pool_seed="", context_column=None,
                         temperature_column=None) -> list[dict]:
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    client = await get_llm_async(llm)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, stop=stop,
                              seed=seed, n=num_generations, logprobs=logprobs)
    if system_prompt_pool:
        from notos.tasks.principles import draw_system_prompt

        # Keyed by the step's pool_seed and the row: each generator of a pool draws on its own.
        drawn = [draw_system_prompt(f"{pool_seed}:{r['row_id']}", system_prompt_pool, principle_weights) for r in rows]
        rows = [{**r, "principle": principle, "system_prompt": prompt} for r, (principle, prompt) in zip(rows, drawn)]
        system_prompt_column = "system_prompt"
    conversations = [build_conversation(r, instruction_column, system_prompt, system_prompt_column, context_column) for r in rows]
    results = await generate_by_temperature(client, conversations, params, [
        r.get(temperature_column) if temperature_column else None for r in rows])
    out = []
    for row, result in zip(rows, results):
        new = {**row, "_tokens": result.prompt_tokens + result.completion_tokens}
        if result.error:
            new["_error"] = result.error
        elif len(result.texts) != num_generations:
            new["_error"] = f"asked for {num_generations} generations, the backend returned {len(result.texts)} (does the server support n?)"
        elif not allow_empty and not any(t.strip() for t in result.texts):
            new["_error"] = f"empty generation (finish_reason {', '.join(result.finish_reasons) or 'none'})"
        else:
            single = num_generations == 1
            new[output_column] = result.texts[0] if single else result.texts
            new["finish_reason"] = result.finish_reasons[0] if single else result.finish_reasons
            if logprobs:
                per_text = [[{"token": t, "logprob": lp} for t, lp in tokens] for tokens in result.token_logprobs or [[]]]
                new["logprobs"] = per_text[0] if single else per_text
        new["model_name"] = client.model_name
        new["usage"] = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
        out.append(new)
    return out
