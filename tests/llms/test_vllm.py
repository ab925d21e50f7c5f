"""vLLM's offline engine: runs only with vllm, a CUDA GPU and NOTOS_VLLM_MODEL (a small chat model)."""

import asyncio
import math
import os

import pytest

from notos.llms.types import GenerationParams


def _why_skip() -> str | None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return "vllm not installed (extra vllm)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    if not os.environ.get("NOTOS_VLLM_MODEL"):
        return "NOTOS_VLLM_MODEL is not set (path or id of a small chat model)"
    return None


pytestmark = pytest.mark.skipif(_why_skip() is not None, reason=_why_skip() or "")


@pytest.fixture(scope="module")
def llm():
    from notos.llms.spec import build_llm

    return build_llm({"backend": "vllm", "model": os.environ["NOTOS_VLLM_MODEL"], "max_model_len": 2048, "gpu_memory_utilization": 0.5})


def test_generate(llm):
    convs = [[{"role": "user", "content": "What is 2 + 2?"}], [{"role": "user", "content": "Name a colour."}]]
    outs = asyncio.run(llm.generate(convs, GenerationParams(max_new_tokens=32, temperature=0, logprobs=True)))
    for out in outs:
        assert out.error is None
        assert out.texts[0].strip()
        assert out.finish_reasons[0] in {"stop", "length"}
        assert out.prompt_tokens > 0 and 0 < out.completion_tokens <= 32
        assert len(out.token_logprobs[0]) == out.completion_tokens
        assert all(lp <= 0 for _, lp in out.token_logprobs[0])


def test_over_long_prompt_fails_alone(llm):
    too_long = [{"role": "user", "content": "word " * 5000}]
    bad, good = asyncio.run(llm.generate([too_long, [{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=4, temperature=0)))
    assert bad.error and good.error is None and good.texts[0]


def test_score_candidates(llm):
    conv = [{"role": "user", "content": "Rate the answer 'Paris' to 'What is the capital of France?' from 1 to 5. Reply with the rating only."}]
    (scores,) = asyncio.run(llm.score_candidates([conv], ["1", "2", "3", "4", "5"], prefix="Rating: "))
    assert scores.error is None
    assert any(v is not None for v in scores.logprobs.values())
    assert math.isclose(sum(scores.probs.values()), 1.0, abs_tol=1e-6)
