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
from notos.tasks.llm_steps import Ask, LLMTask, drop_rows, llm_step, options_of
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
    options = options_of(self_instruct, locals())
    _check_synthesis(name, num_instructions, examples_per_prompt, seed)
    if criteria is not None and not isinstance(criteria, str):
        raise GraphError(f"step '{name}': option 'criteria' must be a text, got {criteria!r}")
    return llm_step(SELF_INSTRUCT, name, options, settings, inputs={instruction_column: "str"}, outputs=SYNTHESIS_OUTPUTS)


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
    options = options_of(lamini, locals())
    _check_synthesis(name, num_instructions, examples_per_prompt, seed)
    if (topics is None) == (topics_column is None):
        raise GraphError(f"step '{name}': give option 'topics' (a list) or 'topics_column', exactly one of them")
    if topics is not None and (not isinstance(topics, list) or not topics or not all(isinstance(t, str) and t.strip() for t in topics)):
        raise GraphError(f"step '{name}': option 'topics' must be a non-empty list of non-empty texts")
    if topics_per_prompt is not None and not _positive_int(topics_per_prompt):
        raise GraphError(f"step '{name}': option 'topics_per_prompt' must be a positive integer or null, got {topics_per_prompt!r}")
    inputs = {instruction_column: "str", **({topics_column: "any"} if topics_column else {})}
    return llm_step(LAMINI, name, options, settings, inputs=inputs, outputs=SYNTHESIS_OUTPUTS + ("synthesis_topics",))


def build_self_instruct(row: dict, *, batch, instruction_column, num_instructions, examples_per_prompt, criteria, seed,
                        **_) -> list[Ask]:
    examples = _examples(batch, row, instruction_column, examples_per_prompt, seed)
    return [Ask(self_instruct_messages(examples, num_instructions, criteria=criteria))]


def build_lamini(row: dict, *, batch, instruction_column, topics, topics_column, topics_per_prompt, num_instructions,
                 examples_per_prompt, seed, **_) -> list[Ask] | str:
    chosen = _row_topics(row, topics, topics_column, topics_per_prompt, seed)
    if not chosen:
        return f"column '{topics_column}' holds no topics"
    examples = _examples(batch, row, instruction_column, examples_per_prompt, seed)
    return [Ask(lamini_messages(chosen, examples, num_instructions), key=chosen)]


def parse_instructions(answer, *, key, batch, instruction_column, num_instructions, **_) -> dict | str:
    """The new instructions of a reply; one that repeats a seed of the batch adds nothing and
    would leak the seeds into the output."""
    parsed = parse_instruction_list(answer.texts[0], max_items=num_instructions)
    seeds = {_key(r[instruction_column]) for r in batch}
    new = [text for text in parsed if _key(text) not in seeds]
    if not new:
        return (f"all {len(parsed)} new instructions repeat seed instructions" if parsed
                else f"the reply held no instructions: {answer.texts[0][:80]!r}")
    return {"instructions": new, "topics": key}


def new_rows(parsed: dict, seed_instruction: str, method: str) -> list[dict]:
    """A child row (`<seed id>.<k>`) for each new instruction of a seed row."""
    extra = {"synthesis_topics": parsed["topics"]} if parsed["topics"] is not None else {}
    return [{**extra, "instruction": text, "seed_instruction": seed_instruction, "synthesis_method": method}
            for text in parsed["instructions"]]


def combine_self_instruct(parsed: list[dict], *, row, instruction_column, **_) -> list[dict]:
    return new_rows(parsed[0], row[instruction_column], "self_instruct")


def combine_lamini(parsed: list[dict], *, row, instruction_column, **_) -> list[dict]:
    return new_rows(parsed[0], row[instruction_column], "lamini")


def _examples(batch: list[dict], row: dict, column: str, per_prompt: int, seed: int) -> list[str]:
    """The row's own instruction, then `per_prompt - 1` other seeds of the batch. Sorting the
    others by row id first makes the pick independent of the order rows arrived in."""
    own = _key(row[column])
    others = sorted((r["row_id"], r[column]) for r in batch if r["row_id"] != row["row_id"] and _key(r[column]) != own)
    rng = random.Random(f"{seed}:{row['row_id']}:examples")
    picked = rng.sample(others, min(per_prompt - 1, len(others)))
    return [row[column]] + [text for _, text in picked]


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


SELF_INSTRUCT = LLMTask("self_instruct", build=build_self_instruct, parse=parse_instructions,
                        combine=combine_self_instruct, model_column="synthesis_model")
LAMINI = LLMTask("lamini", build=build_lamini, parse=parse_instructions, combine=combine_lamini,
                 model_column="synthesis_model")


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
    options = options_of(evol_instruct, locals())
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
    outputs = ("instruction", "original_instruction", "evol_methods", "evol_history", "evolution_error", "evol_model")
    return llm_step(EVOLVE, name, options, settings, inputs={instruction_column: "str"}, outputs=outputs)


def start_evolution(rows: list[dict], *, instruction_column, **_) -> list[dict]:
    return [{**row, "instruction": row[instruction_column], "original_instruction": row[instruction_column],
             "evol_methods": [], "evol_history": [], "evolution_error": None} for row in rows]


def build_evolution(row: dict, *, methods, seed, **_) -> list[Ask]:
    """One rewrite per round, by a method drawn for the row and the round; a failed evolution stops."""
    if row["evolution_error"] is not None:
        return []
    pool = EVOL_METHODS if methods == "all" else tuple(methods)
    method = random.Random(f"{seed}:{row['row_id']}:evol:{len(row['evol_methods'])}").choice(pool)
    return [Ask(evol_messages(row["instruction"], method), key=method)]


def parse_evolution(answer, *, key, row, **_) -> dict:
    evolved = parse_evolved(answer.texts[0])
    reason = evolution_failed(row["instruction"], evolved)
    tried = {"evol_methods": row["evol_methods"] + [key]}
    if reason:
        return {**tried, "evolution_error": reason}
    return {**tried, "instruction": evolved, "evol_history": row["evol_history"] + [evolved]}


def drop_failed_evolutions(rows: list[dict], *, keep_failed, **_) -> list[dict]:
    dropped = [] if keep_failed else [r for r in rows if r.get("evolution_error") and not r.get("_error")]
    if dropped:
        reasons = Counter(r["evolution_error"] for r in dropped)
        log.info("evol_instruct: dropped %d of %d rows whose evolution failed (%s)", len(dropped), len(rows),
                 "; ".join(f"{n} x {why}" for why, n in reasons.most_common()))
    return drop_rows(rows, dropped)


EVOLVE = LLMTask("evol_instruct", build=build_evolution, parse=parse_evolution, model_column="evol_model",
                 prepare=start_evolution, finish=drop_failed_evolutions, rounds=lambda *, rounds, **_: rounds)


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

    options = options_of(system_prompts, locals())
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
                options=options, type_name="system_prompts", **settings)


def pick_system_prompt(row: dict, pool, weights, seed, system_prompt_column) -> dict:
    principle, prompt = draw_system_prompt(row["row_id"], pool, weights, seed)
    return {system_prompt_column: prompt, "principle": principle}


# ---------------------------------------------------------------- option checks

def _check_synthesis(name, num_instructions, examples_per_prompt, seed) -> None:
    for key, value in (("num_instructions", num_instructions), ("examples_per_prompt", examples_per_prompt)):
        if not _positive_int(value):
            raise GraphError(f"step '{name}': option '{key}' must be a positive integer, got {value!r}")
    _check_seed(name, seed)


def _check_seed(name: str, seed) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise GraphError(f"step '{name}': option 'seed' must be an integer, got {seed!r}")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
