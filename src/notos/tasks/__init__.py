"""Tasks: prompt builders and parsers around an LLM, as pipeline steps."""

from notos.tasks.critique_step import critique
from notos.tasks.generation import text_generation
from notos.tasks.rating import ultrafeedback_rating

__all__ = ["critique", "text_generation", "ultrafeedback_rating"]
