"""Tasks: prompt builders and parsers around an LLM, as pipeline steps."""

from notos.tasks.critique_step import critique
from notos.tasks.generation import text_generation
from notos.tasks.judge_steps import llm_judge, pairwise_judge
from notos.tasks.quality_step import quality_filter
from notos.tasks.rating import ultrafeedback_rating
from notos.tasks.records import ultrafeedback_records
from notos.tasks.synthesis_steps import evol_instruct, lamini, self_instruct, system_prompts

__all__ = ["critique", "evol_instruct", "lamini", "llm_judge", "pairwise_judge", "quality_filter", "self_instruct",
           "system_prompts", "text_generation", "ultrafeedback_rating", "ultrafeedback_records"]
