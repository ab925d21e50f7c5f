"""One small LLM interface and its backends (see `types.py` for the protocol, `spec.py` for
how a step names its model)."""

from notos.llms.spec import get_llm, parse_spec
from notos.llms.types import LLM, CandidateScores, Generation, GenerationParams

__all__ = ["LLM", "CandidateScores", "Generation", "GenerationParams", "get_llm", "parse_spec"]
