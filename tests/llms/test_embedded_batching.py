"""Rows from concurrent calls (several steps naming one model) decode as one batch: the answers
are those of separate calls, each row keeps its own settings, and threads/dtypes are as documented."""

import asyncio
import time

import pytest
from staggered_calls import run_staggered

from notos.llms import decode, hf_local
from notos.llms.hf_local import TransformersLLM, default_threads
from notos.llms.spec import get_llm
from notos.llms.types import GenerationParams

GREEDY = GenerationParams(max_new_tokens=20, temperature=0)
SYSTEMS = ["You are a helpful assistant.", "You are an honest assistant.", "You are a concise assistant."]
QUESTIONS = ["What is the capital of France?", "Name a colour.", "Why is the sky blue?",
             "Write one sentence about the sea, the wind and the sailors who cross it at night."]


def chat(system, text):
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


@pytest.mark.parametrize("cores, expected", [(1, 1), (2, 1), (4, 2), (16, 8), (64, 8), (None, 1)])
def test_default_threads_are_half_the_cores_at_most_eight(monkeypatch, cores, expected):
    monkeypatch.setattr(hf_local.os, "cpu_count", lambda: cores)
    assert default_threads() == expected


def test_a_seeded_row_draws_from_its_own_generator():
    row = decode.Row(prompt=[1, 2, 3], params=GenerationParams(temperature=0.7, seed=4))
    again = decode.Row(prompt=[1, 2, 3], params=GenerationParams(temperature=0.7, seed=4))
    other_copy = decode.Row(prompt=[1, 2, 3], params=GenerationParams(temperature=0.7, seed=4), copy=1)
    other_prompt = decode.Row(prompt=[1, 2, 4], params=GenerationParams(temperature=0.7, seed=4))
    draw = lambda r: decode.make_generator(r).initial_seed()
    assert draw(row) == draw(again)
    assert len({draw(row), draw(other_copy), draw(other_prompt)}) == 3


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    import torch

    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    assert decode._top_p(probs.clone(), 0.7).tolist() == pytest.approx([0.625, 0.375, 0.0, 0.0])
    assert decode._top_p(probs.clone(), 0.1).tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0])



@pytest.fixture(scope="module")
def model():
    llm = get_llm("embedded")  # the instance the other embedded tests share: loads once
    llm.load()
    return llm


@pytest.mark.slow
def test_three_steps_and_a_judge_at_once_give_the_answers_of_separate_calls(model):
    calls = [[chat(system, q) for q in QUESTIONS] for system in SYSTEMS]
    separate = [asyncio.run(model.generate(c, GREEDY)) for c in calls]
    rating = [[{"role": "user", "content": "Rate from 1 to 5: 'Paris is the capital of France'. Reply 'Rating: N'."}]]
    alone_score = asyncio.run(model.score_candidates(rating, list("12345"), prefix="Rating: "))

    async def together():
        return await asyncio.gather(*(model.generate(c, GREEDY) for c in calls),
                                    model.score_candidates(rating, list("12345"), prefix="Rating: "))

    admitted = []
    real_admit = decode.Batch.admit

    def spy(batch, rows):
        admitted.append(len(rows))
        return real_admit(batch, rows)

    decode.Batch.admit = spy
    try:
        *merged, score = asyncio.run(together())
    finally:
        decode.Batch.admit = real_admit
    assert [[o.texts for o in call] for call in merged] == [[o.texts for o in call] for call in separate]
    assert [[o.completion_tokens for o in call] for call in merged] == [[o.completion_tokens for o in call] for call in separate]
    assert score[0].logprobs == alone_score[0].logprobs
    assert max(admitted) > len(QUESTIONS)  # rows of different calls were prefilled as one batch


@pytest.mark.slow
def test_a_row_that_arrives_mid_generation_joins_the_running_batch(model):
    long_call = [chat(SYSTEMS[0], "Write a long story about a dragon.")]
    late_call = [chat(SYSTEMS[1], q) for q in QUESTIONS[:2]]
    long_params = GenerationParams(max_new_tokens=60, temperature=0)
    long_alone = asyncio.run(model.generate(long_call, long_params))
    late_alone = asyncio.run(model.generate(late_call, GREEDY))
    long_out, late_out, sizes = run_staggered(model, long_call, long_params, late_call, GREEDY)
    assert [o.texts for o in long_out] == [o.texts for o in long_alone]
    assert [o.texts for o in late_out] == [o.texts for o in late_alone]
    assert sizes[0] == 1 and max(sizes) == 3  # the late rows decoded beside the running one


@pytest.mark.slow
def test_rows_in_one_batch_keep_their_own_settings(model):
    question = chat(SYSTEMS[0], "List three fruits, one per line.")

    async def mixed():
        return await asyncio.gather(
            model.generate([question], GenerationParams(max_new_tokens=40, temperature=0, stop=("\n",))),
            model.generate([question], GenerationParams(max_new_tokens=5, temperature=0)),
            model.generate([question], GenerationParams(max_new_tokens=12, temperature=0.8, n=2, seed=3, logprobs=True)),
        )

    [stopped], [short], [sampled] = asyncio.run(mixed())
    assert stopped.finish_reasons == ["stop"] and "\n" not in stopped.texts[0]
    assert short.finish_reasons == ["length"] and short.completion_tokens == 5
    assert len(sampled.texts) == 2 and sampled.completion_tokens <= 24
    assert all(len(lps) >= 1 and all(lp <= 0 for _, lp in lps) for lps in sampled.token_logprobs)
    [again] = asyncio.run(model.generate([question], GenerationParams(max_new_tokens=12, temperature=0.8, n=2, seed=3, logprobs=True)))
    assert again.texts == sampled.texts  # seeded: the same draws whether or not other rows were beside it


@pytest.mark.slow
def test_a_cancelled_call_leaves_the_batch_and_the_model_serves_the_next(model):
    async def cancel_then_ask():
        long = asyncio.ensure_future(model.generate([chat(SYSTEMS[0], "Write a very long essay on Rome.")],
                                                    GenerationParams(max_new_tokens=2000, temperature=0)))
        await asyncio.sleep(1.0)
        long.cancel()
        started = time.perf_counter()
        [out] = await model.generate([chat(SYSTEMS[2], "Name a colour.")], GenerationParams(max_new_tokens=8, temperature=0))
        return out, time.perf_counter() - started

    out, seconds = asyncio.run(cancel_then_ask())
    assert out.error is None and out.texts[0]
    assert seconds < 30  # not behind the 2,000 tokens nobody waits for


@pytest.mark.slow
def test_dtype_auto_samples_in_float32_and_auto_bf16_in_bfloat16_where_the_cpu_has_it(model):
    import torch

    # auto: one float32 model for everything, so a rerun makes the same rows whatever is batched beside them
    assert model.model.dtype == torch.float32 and model.sampling_decoder is model.greedy_decoder
    faster = TransformersLLM(dtype="auto-bf16")
    faster.load()
    expected = torch.bfloat16 if hf_local._cpu_has_bf16(torch) else torch.float32
    assert faster.greedy_decoder.model.dtype == torch.float32 and faster.sampling_decoder.model.dtype == expected


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_loading_sets_the_thread_count_asked_for(threads, monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(hf_local, "_cpu_has_bf16", lambda torch: False)  # and dtype auto stays float32
    saved = torch.get_num_threads()
    try:
        llm = TransformersLLM(threads=threads)
        llm.load()
        assert torch.get_num_threads() == threads
        assert llm.sampling_decoder is llm.greedy_decoder and llm.model.dtype == torch.float32
    finally:
        torch.set_num_threads(saved)
