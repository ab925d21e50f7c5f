"""Every step type a pipeline file can name, and what the recipe layer knows about their options.

The engine (`notos.pipeline`) knows only its own sources, routing and column steps; this
catalog adds the tasks, curation and training steps and is handed to the YAML loader. A new
step type goes here, by the name YAML uses (`type: text_generation`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable

from notos.curate import steps as curate_steps
from notos.errors import NotosError
from notos.pipeline.yaml_io import ENGINE_STEPS
from notos.tasks import (critique, evol_instruct, lamini, llm_judge, pairwise_judge, quality_filter, self_instruct,
                         system_prompts, text_generation, ultrafeedback_rating, ultrafeedback_records)
from notos.train.reward_step import reward_score

STEPS: dict[str, Callable] = {
    **ENGINE_STEPS,
    "text_generation": text_generation,
    "ultrafeedback_rating": ultrafeedback_rating,
    "critique": critique,
    "ultrafeedback_records": ultrafeedback_records,
    "llm_judge": llm_judge,
    "pairwise_judge": pairwise_judge,
    "self_instruct": self_instruct,
    "lamini": lamini,
    "evol_instruct": evol_instruct,
    "system_prompts": system_prompts,
    "quality_filter": quality_filter,
    "decontaminate": curate_steps.decontaminate,
    "dedup": curate_steps.dedup,
    "audit": curate_steps.audit,
    "binarize": curate_steps.binarize,
    "reward_score": reward_score,
}


def is_llm_option(key: str) -> bool:
    """By convention an option that names a model is `llm` or ends in `_llm` (`judge_llm`)."""
    return key == "llm" or key.endswith("_llm")


def llm_options(entry: dict) -> list[str]:
    """The LLM options a step entry sets or its type declares (with a default)."""
    factory = STEPS.get(entry.get("type"))
    declared = set(inspect.signature(factory).parameters) if factory else set()
    return sorted(k for k in {*entry, *declared} if is_llm_option(k))


def expand_llm_spec(option: str, value: str) -> dict | None:
    """`--set rate.llm.model=x` on `llm: openai:gpt-4o`: the spec's mapping form, to edit one key."""
    if not is_llm_option(option):
        return None
    from notos.llms.spec import parse_spec

    return parse_spec(value)


POOL_STEPS = ("text_generation",)  # the steps that make a recipe's pool of generators


def point_llms(config: dict, base_url: str, model: str | None = None, api_key_env: str | None = None,
               pool: list[str] | None = None) -> dict:
    """`--llm-base-url`: every LLM of the pipeline talks to one OpenAI-compatible server.
    `pool` (`--llm-models`): the generators take these models in turn, so a pool of six
    generators stays a pool on a server that serves several models; the other LLM steps (the
    judges) take `model`."""
    from notos.llms.spec import point_at_server

    config = copy.deepcopy(config)
    changed = generators = 0
    for entry in config.get("steps") or []:
        if isinstance(entry, dict):
            for key in llm_options(entry):
                chosen = model
                if pool and entry.get("type") in POOL_STEPS:
                    chosen, generators = pool[generators % len(pool)], generators + 1
                entry[key] = point_at_server(base_url, chosen, api_key_env)
                changed += 1
    if not changed:
        raise NotosError("--llm-base-url: this pipeline has no LLM steps to point at a server")
    return config


def pool_models(config: dict) -> tuple[int, list[str]]:
    """(generator steps, the distinct models they use) of a resolved config: a pool of six
    generators that all ask one model is no pool, and the user should hear of it."""
    models = []
    steps = [e for e in config.get("steps") or [] if isinstance(e, dict) and e.get("type") in POOL_STEPS
             and e.get("enabled", True) is not False]
    for entry in steps:
        spec = entry.get("llm")
        name = spec.get("model") if isinstance(spec, dict) else spec
        models.append(str(name))
    return len(steps), list(dict.fromkeys(models))


def llm_connection(config: dict, timeout: float | None = None, max_retries: int | None = None) -> dict:
    """`--llm-timeout` / `--llm-max-retries`: the client settings of every LLM of the pipeline
    served over HTTP (a spec string is expanded to its mapping first). Connection settings, so
    they stay out of fingerprints (`llms.spec.OPERATIONAL`): changing them recomputes nothing."""
    from notos.llms.spec import parse_spec

    settings = {k: v for k, v in (("timeout", timeout), ("max_retries", max_retries)) if v is not None}
    flags = " / ".join(f"--llm-{k.replace('_', '-')}" for k in settings)
    config = copy.deepcopy(config)
    changed = 0
    for entry in config.get("steps") or []:
        if not isinstance(entry, dict):
            continue
        factory = STEPS.get(entry.get("type"))
        declared = inspect.signature(factory).parameters if factory else {}
        for key in llm_options(entry):
            value = entry[key] if key in entry else getattr(declared.get(key), "default", None)
            if value is inspect.Parameter.empty:
                continue
            try:
                spec = parse_spec(value)
            except NotosError as exc:
                raise NotosError(f"{flags}: step '{entry.get('name')}': {exc}") from None
            if spec.get("backend") == "openai":  # the one backend with a network client
                entry[key] = {**spec, **settings}
                changed += 1
    if settings and not changed:
        raise NotosError(f"{flags}: no LLM of this pipeline talks to a server (use --llm-base-url URL, or an openai: / http:// spec)")
    return config


def all_embedded(config: dict) -> bool:
    """Whether every LLM the config names is the embedded model (the quickstart's honesty note)."""
    llms = [v for step in config.get("steps") or [] if isinstance(step, dict) for k, v in step.items() if is_llm_option(k)]
    return bool(llms) and all(v == "embedded" for v in llms)
