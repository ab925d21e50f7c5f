"""Tasks: prompt builders and parsers around an LLM, as pipeline steps."""

from notos.tasks.generation import text_generation

__all__ = ["text_generation"]
