"""The embedded model decodes with the GGUF file's own 4-bit weights: recovered exactly, used only
for one-token generation steps, and a row's tokens do not depend on the rows beside it."""

import asyncio

import pytest
from staggered_calls import run_staggered

from notos.llms import q4_decode, row_attention
from notos.llms.spec import get_llm
from notos.llms.types import GenerationParams

torch = pytest.importorskip("torch")


def q4_1_matrix(rows=64, cols=128, seed=0):
    """A matrix as llama.cpp's Q4_1 dequantizes it: per block of 32, d * q + m, q in 0..15."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (rows, cols // 32, 32), generator=gen).float()
    q[..., 0], q[..., 1] = 0, 15  # llama.cpp maps each block's smallest weight to 0, its largest to 15
    d = torch.rand(rows, cols // 32, 1, generator=gen) * 0.01
    m = torch.randn(rows, cols // 32, 1, generator=gen) * 0.05
    return (q * d + m).reshape(rows, cols), q.reshape(rows, cols)


def test_a_q4_1_matrix_is_recovered_exactly():
    weight, q = q4_1_matrix()
    recovered, step, low = q4_decode.recover_q4_1(weight)
    assert torch.equal(recovered.float(), q)
    rebuilt = (recovered.float().reshape(64, 4, 32) * step[..., None] + low[..., None]).reshape(64, 128)
    assert torch.allclose(rebuilt, weight, atol=1e-7, rtol=0)


def test_weights_that_are_not_q4_1_are_left_alone():
    assert q4_decode.recover_q4_1(torch.randn(64, 128)) is None
    assert q4_decode.recover_q4_1(torch.randn(64, 100)) is None  # rows not in blocks of 32
    plain = torch.nn.Sequential(torch.nn.Linear(128, 64, bias=False))
    assert q4_decode.use_q4_decoding(plain) == {} and isinstance(plain[0], torch.nn.Linear)


def test_packs_from_the_cache_decode_as_the_recovered_ones(tmp_path):
    from notos.llms import weights_cache

    def layers():
        model = torch.nn.Sequential(*(torch.nn.Linear(128, 128, bias=False) for _ in range(2)))
        for k, linear in enumerate(model):
            linear.weight.data = q4_1_matrix(rows=128, seed=k)[0]
        return model

    fresh, again = layers(), layers()
    (tmp_path / "w").mkdir()
    packs = q4_decode.use_q4_decoding(fresh)
    assert sorted(packs) == ["0.packed", "0.scales_zeros", "1.packed", "1.scales_zeros"]
    folder = tmp_path / "w"
    (folder / weights_cache.WEIGHTS).write_bytes(b"float32 weights")
    (folder / weights_cache.MANIFEST).write_text(
        '{"format": %d, "files": {"%s": %s}}' % (weights_cache.FORMAT, weights_cache.WEIGHTS,
                                                 __import__("json").dumps(weights_cache._entry(folder / weights_cache.WEIGHTS))))
    assert weights_cache.add_tensors(folder, q4_decode.cache_file(), packs)
    cached = weights_cache.read_tensors(folder, q4_decode.cache_file())
    assert sorted(q4_decode.use_q4_decoding(again, cached)) == sorted(packs)
    x = torch.randn(4, 1, 128)
    with torch.inference_mode(), q4_decode.generating():
        assert torch.equal(fresh(x), again(x))
    (folder / q4_decode.cache_file()).write_bytes(b"torn")  # fails its checksum: rebuilt by the caller
    assert weights_cache.read_tensors(folder, q4_decode.cache_file()) is None


@pytest.fixture(scope="module")
def model():
    llm = get_llm("embedded")  # the instance the other embedded tests share: loads once
    llm.load()
    if not q4_decode.available(torch):
        pytest.skip("this CPU has no native bfloat16, so the embedded model decodes in float32")
    return llm


def swapped_layers(llm):
    return [m for m in llm.model.modules() if type(m).__name__ == "Q4DecodeLinear"]


def test_every_projection_of_the_embedded_model_decodes_in_4_bit(model):
    layers = swapped_layers(model)
    config = model.model.config
    assert len(layers) == config.num_hidden_layers * 7  # q, k, v, o, gate, up, down
    head = model.model.lm_head  # tied to the Q8_0 embeddings: a bfloat16 copy for generation
    assert type(head).__name__ == "Bf16GenerationHead" and head.weight is model.model.model.embed_tokens.weight
    assert config._attn_implementation == row_attention.NAME


@pytest.mark.parametrize("which", ["projection", "head"])
def test_the_quick_path_is_only_taken_in_generation(model, which):
    layer = swapped_layers(model)[0] if which == "projection" else model.model.lm_head
    x = torch.randn(3, 1, layer.weight.shape[1])
    with torch.inference_mode():
        plain = torch.nn.functional.linear(x, layer.weight)
        assert torch.equal(layer(x), plain)  # log-prob scoring: the float32 weights, exactly
        with q4_decode.generating():
            quick = layer(x)
    assert not torch.equal(quick, plain)
    assert torch.allclose(quick, plain, rtol=0.02, atol=0.02 * float(plain.abs().max()))


@pytest.mark.parametrize("prompts", [False, True])
def test_a_row_gets_the_same_projection_in_any_batch(model, prompts):
    """What reruns rely on: in generation a row's output does not depend on the rows beside it
    (the int4 kernel for steps, bfloat16 GEMMs for prompt passes and the output projection)."""
    layers = [swapped_layers(model)[0], swapped_layers(model)[-1], model.model.lm_head]
    for layer in layers:
        x = torch.randn(24, 5 if prompts else 1, layer.weight.shape[1])
        with torch.inference_mode(), q4_decode.generating(prompts=prompts):
            alone = torch.cat([layer(x[i:i + 1]) for i in range(24)])
            for rows in (2, 7, 24):
                assert torch.equal(layer(x[:rows]), alone[:rows]), (type(layer).__name__, rows)


@pytest.mark.slow
def test_a_sampled_row_is_the_same_alone_and_when_rows_join_it_mid_answer(model):
    """A rerun batches rows differently; each row must still come out the same. Rows that join
    a running row pad its keys on the left, which is what used to change its tokens."""
    params = GenerationParams(max_new_tokens=60, temperature=0.7, seed=1)  # a seed where padding did change the row
    target = [[{"role": "user", "content": "Write a long story about a dragon."}]]
    joiners = [[{"role": "system", "content": "You are an honest assistant."}, {"role": "user", "content": text}]
               for text in ("Name three rivers in Europe and say which is the longest.", "Why is the sky blue?")]
    alone = asyncio.run(model.generate(target, params))[0].texts
    joined, _, steps = run_staggered(model, target, params, joiners, params, after_steps=3)
    assert max(steps) == 3  # the joiners decoded beside the running row
    assert joined[0].texts == alone


@pytest.mark.slow
@pytest.mark.parametrize("temperature, seed", [(0.0, None), (0.7, 1)])  # both changed with SDPA's padded prompt pass
def test_a_row_is_the_same_alone_and_admitted_with_rows_of_other_lengths(model, temperature, seed):
    params = GenerationParams(max_new_tokens=60, temperature=temperature, seed=seed)
    target = [{"role": "user", "content": "Write a long story about a dragon."}]
    short = [{"role": "user", "content": "Hi."}]
    long = [{"role": "system", "content": "You are an honest assistant who answers with care."},
            {"role": "user", "content": "Name three rivers in Europe and say which is the longest, with its length in kilometres."}]
    alone = asyncio.run(model.generate([target], params))[0].texts
    admitted_together = asyncio.run(model.generate([short, target, long], params))[1].texts
    assert admitted_together == alone


def test_only_a_gguf_file_with_q4_1_tensors_is_recovered(tmp_path):
    from notos.llms.embedded import embedded_gguf

    assert q4_decode.file_has_q4_1(embedded_gguf())
    (tmp_path / "broken.gguf").write_bytes(b"GGUF not really")
    assert not q4_decode.file_has_q4_1(tmp_path / "broken.gguf")
