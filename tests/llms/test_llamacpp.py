"""The llama-cpp-python backend on the embedded SmolLM2-135M GGUF (CPU, a few seconds)."""

import asyncio
import json
import math

import pytest

from notos.llms.spec import build_llm, get_llm
from notos.llms.types import GenerationParams

try:
    import llama_cpp  # noqa: F401

    HAVE_LLAMA_CPP = True
except ImportError:
    HAVE_LLAMA_CPP = False

pytestmark = pytest.mark.skipif(not HAVE_LLAMA_CPP, reason="llama-cpp-python not installed (extra llamacpp)")

RATING = [
    {"role": "system", "content": "You rate answers from 1 (bad) to 5 (excellent). Reply with the rating only."},
    {"role": "user", "content": "Question: What is the capital of France?\nAnswer: Paris is the capital of France.\nRate the answer."},
]


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def llm():
    return get_llm("llamacpp:embedded")


@pytest.fixture
def mt_bench_question(shared_data):
    path = shared_data / "mt_bench" / "question.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with path.open() as f:
        return json.loads(f.readline())["turns"][0]


def test_generate_greedy_with_logprobs(llm, mt_bench_question):
    assert llm.model_name == "SmolLM2-135M-Instruct"
    convs = [[{"role": "user", "content": mt_bench_question}], [{"role": "user", "content": "What is 2 + 2?"}]]
    params = GenerationParams(max_new_tokens=48, temperature=0, logprobs=True)
    outs = run(llm.generate(convs, params))
    assert len(outs) == 2
    for out in outs:
        assert out.error is None
        assert len(out.texts) == 1 and out.texts[0].strip()
        assert out.finish_reasons[0] in {"stop", "length"}
        assert out.prompt_tokens > 0 and 0 < out.completion_tokens <= 48
        (logprobs,) = out.token_logprobs
        assert len(logprobs) == out.completion_tokens
        assert all(isinstance(tok, str) and lp <= 0 for tok, lp in logprobs)
    # greedy is deterministic: the same call gives the same text
    again = run(llm.generate(convs[1:], params))
    assert again[0].texts == outs[1].texts


def test_n_samples_and_no_logprobs(llm):
    out = run(llm.generate([RATING], GenerationParams(max_new_tokens=4, temperature=1.0, seed=7, n=3)))[0]
    assert out.error is None and len(out.texts) == 3 and len(out.finish_reasons) == 3
    assert out.token_logprobs is None
    assert 3 <= out.completion_tokens <= 12


def test_score_candidates_distribution(llm):
    candidates = ["1", "2", "3", "4", "5"]
    (scores,) = run(llm.score_candidates([RATING], candidates, prefix="Rating: "))
    assert scores.error is None
    assert set(scores.logprobs) == set(candidates)
    assert all(v is None or v <= 0 for v in scores.logprobs.values())
    assert any(v is not None for v in scores.logprobs.values())
    assert math.isclose(sum(scores.probs.values()), 1.0, abs_tol=1e-6)
    assert 1 <= scores.expected() <= 5


def test_score_word_candidates_after_trailing_space(llm):
    # " Yes" is one token: the prefix's trailing space is left to the answer, so "Answer: " and
    # "Answer:" score the same and both find the words among the top tokens
    conv = [{"role": "user", "content": "Is Paris the capital of France? Answer Yes or No."}]
    (spaced,) = run(llm.score_candidates([conv], ["Yes", "No"], prefix="Answer: "))
    (bare,) = run(llm.score_candidates([conv], ["Yes", "No"], prefix="Answer:"))
    assert spaced.error is None and all(v is not None for v in spaced.logprobs.values())
    assert spaced.logprobs == bare.logprobs


def test_seeded_sampling_repeats_whatever_ran_before(llm):
    conv = [[{"role": "user", "content": "Tell a story."}]]
    params = GenerationParams(max_new_tokens=8, temperature=1.0, seed=3, n=2)
    first = run(llm.generate(conv, params))[0]
    run(llm.generate([RATING], GenerationParams(max_new_tokens=2)))  # leaves another prompt in the KV cache
    assert run(llm.generate(conv, params))[0].texts == first.texts
    assert first.texts[0] != first.texts[1]  # n>1 varies the seed


def test_score_candidates_multi_token_candidate(llm):
    (scores,) = run(llm.score_candidates([RATING], ["1", "excellentissimo"], prefix="Rating: "))
    assert scores.error and "excellentissimo" in scores.error


def test_one_failing_conversation_does_not_fail_the_batch():
    small = build_llm({"backend": "llamacpp", "model": "embedded", "n_ctx": 256})
    too_long = [{"role": "user", "content": "word " * 600}]
    fine = [{"role": "user", "content": "Say hi."}]
    bad, good = run(small.generate([too_long, fine], GenerationParams(max_new_tokens=4, temperature=0)))
    assert bad.error and bad.texts == []
    assert good.error is None and good.texts[0]
    bad_score, good_score = run(small.score_candidates([too_long, RATING], ["1", "2"], prefix="Rating: "))
    assert bad_score.error and good_score.error is None
