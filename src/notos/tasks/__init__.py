"""Tasks: prompt builders and parsers around an LLM, as pipeline steps."""

from notos.tasks.critique_step import critique
from notos.tasks.generation import text_generation
from notos.tasks.judge_steps import llm_judge, pairwise_judge
from notos.tasks.rating import ultrafeedback_rating
from notos.tasks.records import ultrafeedback_records

__all__ = ["critique", "llm_judge", "pairwise_judge", "text_generation", "ultrafeedback_rating", "ultrafeedback_records"]
