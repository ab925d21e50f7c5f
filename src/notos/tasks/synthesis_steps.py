"""Instruction synthesis as pipeline steps: Self-Instruct, LaMini, Evol-Instruct, and the
system-prompt pools (UltraFeedback principles, Orca) that condition a later text_generation.

    - {name: grow, type: self_instruct, after: seeds, llm: openai:gpt-4o-mini, num_instructions: 5}
    - {name: evolve, type: evol_instruct, after: grow, rounds: 2, methods: [constraints, deepen]}
    - {name: principle, type: system_prompts, after: evolve, pool: principles}
    - {name: answer, type: text_generation, after: principle, system_prompt_column: system_prompt}

Self-Instruct and LaMini expand each seed row into one child row per new instruction (row id
`<seed id>.<k>`). Evol-Instruct rewrites each row in place, round after round, and drops the
rows whose evolution failed (or keeps them flagged). Every random choice hashes (seed, row_id),
so a rerun or a resume makes the same rows.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from typing import TYPE_CHECKING

from notos.errors import GraphError
from notos.tasks.llm_steps import check_llm, check_params, llm_step
from notos.tasks.principles import PRINCIPLES, draw_system_prompt, pick_principle
from notos.tasks.synthesis import (
    EVOL_IN_BREADTH, EVOL_IN_DEPTH, evol_messages, evolution_failed, lamini_messages, parse_evolved,
    parse_instruction_list, self_instruct_messages,
)

if TYPE_CHECKING:
    from notos.pipeline.step import Step

log = logging.getLogger("notos")
EVOL_METHODS = EVOL_IN_DEPTH + EVOL_IN_BREADTH
SYNTHESIS_OUTPUTS = ("instruction", "seed_instruction", "synthesis_method", "synthesis_model")


# ---------------------------------------------------------------- Self-Instruct / LaMini

def self_instruct(
    llm="embedded",
    instruction_column: str = "instruction",
    num_instructions: int = 5,
    examples_per_prompt: int = 3,
    criteria: str | None = None,
    max_new_tokens: int = 512,
    temperature: float = 0.7,
    seed: int = 0,
    *,
    name: str = "self_instruct",
    **settings,
) -> Step:
    _check_synthesis(name, llm, num_instructions, examples_per_prompt, max_new_tokens, temperature, seed)
    if criteria is not None and not isinstance(criteria, str):
        raise GraphError(f"step '{name}': option 'criteria' must be a text, got {criteria!r}")
    options = {"llm": llm, "instruction_column": instruction_column, "num_instructions": num_instructions,
               "examples_per_prompt": examples_per_prompt, "criteria": criteria, "max_new_tokens": max_new_tokens,
               "temperature": temperature, "seed": seed}
    return llm_step(name=name, fn=self_instruct_batch, inputs={instruction_column: "str"}, outputs=SYNTHESIS_OUTPUTS,
                    options=options, type_name="self_instruct", settings=settings)


def lamini(
    llm="embedded",
    instruction_column: str = "instruction",
    topics: list[str] | None = None,
    topics_column: str | None = None,
    topics_per_prompt: int | None = 3,
    num_instructions: int = 5,
    examples_per_prompt: int = 3,
    max_new_tokens: int = 512,
    temperature: float = 0.7,
    seed: int = 0,
    *,
    name: str = "lamini",
    **settings,
) -> Step:
    _check_synthesis(name, llm, num_instructions, examples_per_prompt, max_new_tokens, temperature, seed)
    if (topics is None) == (topics_column is None):
        raise GraphError(f"step '{name}': give option 'topics' (a list) or 'topics_column', exactly one of them")
    if topics is not None and not (isinstance(topics, list) and topics and all(isinstance(t, str) and t.strip() for t in topics)):
        raise GraphError(f"step '{name}': option 'topics' must be a non-empty list of non-empty texts")
    if topics_per_prompt is not None and not _positive_int(topics_per_prompt):
        raise GraphError(f"step '{name}': option 'topics_per_prompt' must be a positive integer or null, got {topics_per_prompt!r}")
    inputs = {instruction_column: "str", **({topics_column: "any"} if topics_column else {})}
    options = {"llm": llm, "instruction_column": instruction_column, "topics": topics, "topics_column": topics_column,
               "topics_per_prompt": topics_per_prompt, "num_instructions": num_instructions,
               "examples_per_prompt": examples_per_prompt, "max_new_tokens": max_new_tokens,
               "temperature": temperature, "seed": seed}
    return llm_step(name=name, fn=lamini_batch, inputs=inputs, outputs=SYNTHESIS_OUTPUTS + ("synthesis_topics",),
                    options=options, type_name="lamini", settings=settings)


async def self_instruct_batch(rows: list[dict], *, llm, instruction_column, num_instructions, examples_per_prompt,
                              criteria, max_new_tokens, temperature, seed) -> list[dict]:
    prompts = [self_instruct_messages(_examples(rows, i, instruction_column, examples_per_prompt, seed),
                                      num_instructions, criteria=criteria) for i in range(len(rows))]
    return await _expand(rows, prompts, [{} for _ in rows], llm=llm, instruction_column=instruction_column,
                         method="self_instruct", num_instructions=num_instructions, max_new_tokens=max_new_tokens,
                         temperature=temperature)


async def lamini_batch(rows: list[dict], *, llm, instruction_column, topics, topics_column, topics_per_prompt,
                       num_instructions, examples_per_prompt, max_new_tokens, temperature, seed) -> list[dict]:
    prompts, extras = [], []
    for i, row in enumerate(rows):
        chosen = _row_topics(row, topics, topics_column, topics_per_prompt, seed)
        examples = _examples(rows, i, instruction_column, examples_per_prompt, seed)
        prompts.append(lamini_messages(chosen, examples, num_instructions) if chosen else None)
        extras.append({"synthesis_topics": chosen} if chosen else {"_error": f"column '{topics_column}' holds no topics"})
    return await _expand(rows, prompts, extras, llm=llm, instruction_column=instruction_column, method="lamini",
                         num_instructions=num_instructions, max_new_tokens=max_new_tokens, temperature=temperature)


async def _expand(rows, prompts, extras, *, llm, instruction_column, method, num_instructions, max_new_tokens,
                  temperature) -> list[dict]:
    """One request per seed row (None: already failed), one child row per new instruction."""
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    client = await get_llm_async(llm)
    asked = [i for i, p in enumerate(prompts) if p is not None]
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    results = dict(zip(asked, await client.generate([prompts[i] for i in asked], params)))
    seeds = {_key(r[instruction_column]) for r in rows}
    out = []
    for i, row in enumerate(rows):
        result = results.get(i)
        if result is None:
            out.append({**row, **extras[i]})
            continue
        tokens = result.prompt_tokens + result.completion_tokens
        if result.error:
            out.append({**row, "_error": result.error, "_tokens": tokens})
            continue
        parsed = parse_instruction_list(result.texts[0], max_items=num_instructions)
        # A "new" task that repeats a seed adds nothing and would leak the seeds into the output.
        new = [text for text in parsed if _key(text) not in seeds]
        if not new:
            why = (f"all {len(parsed)} new instructions repeat seed instructions" if parsed
                   else f"the reply held no instructions: {result.texts[0][:80]!r}")
            out.append({**row, "_error": why, "_tokens": tokens})
            continue
        for k, text in enumerate(new):
            out.append({**row, **extras[i], "row_id": f"{row['row_id']}.{k}", "instruction": text,
                        "seed_instruction": row[instruction_column], "synthesis_method": method,
                        "synthesis_model": client.model_name, "_tokens": tokens if k == 0 else 0})
    return out


def _examples(rows: list[dict], i: int, column: str, per_prompt: int, seed: int) -> list[str]:
    """The row's own instruction, then `per_prompt - 1` other seeds of the batch. Sorting the
    others by row id first makes the pick independent of the order rows arrived in."""
    others = sorted((r["row_id"], r[column]) for j, r in enumerate(rows) if j != i and _key(r[column]) != _key(rows[i][column]))
    rng = random.Random(f"{seed}:{rows[i]['row_id']}:examples")
    picked = rng.sample(others, min(per_prompt - 1, len(others)))
    return [rows[i][column]] + [text for _, text in picked]


def _row_topics(row: dict, topics, topics_column, per_prompt, seed) -> list[str]:
    pool = topics if topics is not None else row.get(topics_column)
    pool = [pool] if isinstance(pool, str) else list(pool or [])
    pool = [t.strip() for t in pool if isinstance(t, str) and t.strip()]
    if per_prompt is None or len(pool) <= per_prompt:
        return pool
    # LaMini steered each prompt with a few topics; a long list in every prompt blurs the steer.
    return random.Random(f"{seed}:{row['row_id']}:topics").sample(pool, per_prompt)


def _key(text: str) -> str:
    return " ".join(str(text).lower().split()).rstrip(".?!")


# ---------------------------------------------------------------- Evol-Instruct

def evol_instruct(
    llm="embedded",
    instruction_column: str = "instruction",
    methods="all",
    rounds: int = 1,
    keep_failed: bool = False,
    max_new_tokens: int = 512,
    temperature: float = 0.7,
    seed: int = 0,
    *,
    name: str = "evol_instruct",
    **settings,
) -> Step:
    check_llm(name, llm)
    check_params(name, max_new_tokens=max_new_tokens, temperature=temperature)
    if methods != "all":
        if not isinstance(methods, list) or not methods:
            raise GraphError(f"step '{name}': option 'methods' must be 'all' or a non-empty list of {', '.join(EVOL_METHODS)}")
        unknown = [m for m in methods if m not in EVOL_METHODS]
        if unknown:
            raise GraphError(f"step '{name}': option 'methods' has unknown method {unknown[0]!r} (methods: {', '.join(EVOL_METHODS)})")
    if not _positive_int(rounds):
        raise GraphError(f"step '{name}': option 'rounds' must be a positive integer, got {rounds!r}")
    if not isinstance(keep_failed, bool):
        raise GraphError(f"step '{name}': option 'keep_failed' must be true or false, got {keep_failed!r}")
    _check_seed(name, seed)
    options = {"llm": llm, "instruction_column": instruction_column, "methods": methods, "rounds": rounds,
               "keep_failed": keep_failed, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed}
    outputs = ("instruction", "original_instruction", "evol_methods", "evol_history", "evolution_error", "evol_model")
    return llm_step(name=name, fn=evol_batch, inputs={instruction_column: "str"}, outputs=outputs, options=options,
                    type_name="evol_instruct", settings=settings)


async def evol_batch(rows: list[dict], *, llm, instruction_column, methods, rounds, keep_failed, max_new_tokens,
                     temperature, seed) -> list[dict]:
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    client = await get_llm_async(llm)
    pool = EVOL_METHODS if methods == "all" else tuple(methods)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    out = [{**row, "instruction": row[instruction_column], "original_instruction": row[instruction_column],
            "evol_methods": [], "evol_history": [], "evolution_error": None, "evol_model": client.model_name,
            "_tokens": 0} for row in rows]
    failed_request: dict[int, str] = {}
    for round_ in range(rounds):
        # Rounds are sequential per row, but each round is one call for the whole batch.
        active = [i for i, r in enumerate(out) if r["evolution_error"] is None and i not in failed_request]
        for i in active:
            rid = rows[i]["row_id"]
            out[i]["evol_methods"].append(random.Random(f"{seed}:{rid}:evol:{round_}").choice(pool))
        results = await client.generate([evol_messages(out[i]["instruction"], out[i]["evol_methods"][-1]) for i in active], params)
        for i, result in zip(active, results):
            out[i]["_tokens"] += result.prompt_tokens + result.completion_tokens
            if result.error:
                failed_request[i] = result.error
                continue
            evolved = parse_evolved(result.texts[0])
            reason = evolution_failed(out[i]["instruction"], evolved)
            if reason:
                out[i]["evolution_error"] = reason
            else:
                out[i]["instruction"] = evolved
                out[i]["evol_history"].append(evolved)
    # A failed request fails the row (retry_failed redoes it); its partial evolution is not kept.
    for i, error in failed_request.items():
        out[i] = {**rows[i], "_error": error, "_tokens": out[i]["_tokens"]}
    dropped = [r for r in out if r.get("evolution_error")]
    if dropped and not keep_failed:
        reasons = Counter(r["evolution_error"] for r in dropped)
        log.info("evol_instruct: dropped %d of %d rows whose evolution failed (%s)", len(dropped), len(rows),
                 "; ".join(f"{n} x {why}" for why, n in reasons.most_common()))
        # The dropped rows' tokens were still spent: carry them on a surviving row if there is one.
        spent = sum(r["_tokens"] for r in dropped)
        out = [r for r in out if not r.get("evolution_error")]
        if out:
            out[0]["_tokens"] += spent
    return out


# ---------------------------------------------------------------- system-prompt pools

SYSTEM_POOLS = ("principles", "orca")


def system_prompts(
    pool: str = "principles",
    weights: dict[str, float] | None = None,
    seed: int = 0,
    system_prompt_column: str = "system_prompt",
    *,
    name: str = "system_prompts",
    **settings,
) -> Step:
    """Adds a system prompt per row (and `principle`: its name, or `orca-<index>`) for a later
    `text_generation(system_prompt_column=...)`: UltraFeedback's principle-conditioned answers,
    or Orca's explanation traces."""
    from notos.pipeline.step import Step

    if pool not in SYSTEM_POOLS:
        raise GraphError(f"step '{name}': option 'pool' must be one of {', '.join(SYSTEM_POOLS)}, got {pool!r}")
    _check_seed(name, seed)
    if weights is not None:
        if pool != "principles":
            raise GraphError(f"step '{name}': option 'weights' applies only to pool 'principles'")
        if not isinstance(weights, dict) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights.values()):
            raise GraphError(f"step '{name}': option 'weights' must map principle names ({', '.join(PRINCIPLES)}) to numbers")
        try:
            pick_principle("", seed, weights)
        except ValueError as exc:
            raise GraphError(f"step '{name}': option 'weights': {exc}") from None
    if not isinstance(system_prompt_column, str) or not system_prompt_column or system_prompt_column == "principle":
        raise GraphError(f"step '{name}': option 'system_prompt_column' must be a column name other than 'principle'")
    # Cheap and deterministic: no cache, like the column steps.
    settings.setdefault("cache", False)
    return Step(name=name, kind="map", fn=pick_system_prompt, per_row=True, outputs=(system_prompt_column, "principle"),
                options={"pool": pool, "weights": weights, "seed": seed, "system_prompt_column": system_prompt_column},
                type_name="system_prompts", **settings)


def pick_system_prompt(row: dict, pool, weights, seed, system_prompt_column) -> dict:
    principle, prompt = draw_system_prompt(row["row_id"], pool, weights, seed)
    return {system_prompt_column: prompt, "principle": principle}


# ---------------------------------------------------------------- option checks

def _check_synthesis(name, llm, num_instructions, examples_per_prompt, max_new_tokens, temperature, seed) -> None:
    check_llm(name, llm)
    check_params(name, max_new_tokens=max_new_tokens, temperature=temperature)
    for key, value in (("num_instructions", num_instructions), ("examples_per_prompt", examples_per_prompt)):
        if not _positive_int(value):
            raise GraphError(f"step '{name}': option '{key}' must be a positive integer, got {value!r}")
    _check_seed(name, seed)


def _check_seed(name: str, seed) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise GraphError(f"step '{name}': option 'seed' must be an integer, got {seed!r}")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
