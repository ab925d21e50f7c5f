"""Step types by the name YAML uses (`type: load_data`). Later modules add theirs with `register`."""

from collections.abc import Callable

from notos.curate import steps as curate_steps
from notos.pipeline import columns, routing, sources
from notos.train import reward_step
from notos.tasks import critique_step, generation, judge_steps, quality_step, rating, records, synthesis_steps

STEP_TYPES: dict[str, Callable] = {
    "load_data": sources.load_data,
    "from_rows": sources.from_rows,
    "sample_n": routing.sample_n,
    "keep_columns": columns.keep_columns,
    "rename_columns": columns.rename_columns,
    "drop_columns": columns.drop_columns,
    "filter_rows": columns.filter_rows,
    "group_columns": columns.group_columns,
    "text_generation": generation.text_generation,
    "ultrafeedback_rating": rating.ultrafeedback_rating,
    "critique": critique_step.critique,
    "ultrafeedback_records": records.ultrafeedback_records,
    "llm_judge": judge_steps.llm_judge,
    "pairwise_judge": judge_steps.pairwise_judge,
    "self_instruct": synthesis_steps.self_instruct,
    "lamini": synthesis_steps.lamini,
    "evol_instruct": synthesis_steps.evol_instruct,
    "system_prompts": synthesis_steps.system_prompts,
    "quality_filter": quality_step.quality_filter,
    "decontaminate": curate_steps.decontaminate,
    "dedup": curate_steps.dedup,
    "audit": curate_steps.audit,
    "binarize": curate_steps.binarize,
    "reward_score": reward_step.reward_score,
}


def register(type_name: str, factory: Callable) -> None:
    STEP_TYPES[type_name] = factory
