"""The dequantized weights of the embedded GGUF, cached on disk: used on the second load, rebuilt
when corrupt, written atomically, placed where the environment says."""

import asyncio
import os
from pathlib import Path

import pytest

from notos.llms import weights_cache
from notos.llms.hf_local import TransformersLLM
from notos.llms.types import GenerationParams


def test_the_cache_lives_where_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTOS_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights_cache.cache_root() == tmp_path / "home" / ".cache" / "notos" / "weights"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights_cache.cache_root() == tmp_path / "xdg" / "notos" / "weights"
    monkeypatch.setenv("NOTOS_CACHE_DIR", str(tmp_path / "mine"))
    assert weights_cache.cache_root() == tmp_path / "mine" / "weights"


def test_a_changed_gguf_file_gets_a_new_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("NOTOS_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"one")
    first = weights_cache.cache_folder(gguf)
    assert first.parent == tmp_path / "cache" / "weights" and first.name.startswith("m-")
    assert weights_cache.cache_folder(gguf) == first
    gguf.write_bytes(b"two!")  # another size (and mtime)
    assert weights_cache.cache_folder(gguf) != first


def test_an_unwritable_cache_costs_only_speed(monkeypatch, tmp_path, capsys):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    assert weights_cache.save(blocked / "weights" / "m-123", model=None, tokenizer=None) is False
    assert "cannot cache the dequantized weights" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file-not-folder"]


def _greedy(llm):
    params = GenerationParams(max_new_tokens=12, temperature=0)
    [out] = asyncio.run(llm.generate([[{"role": "user", "content": "Name a fruit."}]], params))
    return out.texts


@pytest.mark.slow
def test_second_load_reads_the_cache_and_a_corrupt_one_is_rebuilt(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NOTOS_CACHE_DIR", str(tmp_path / "cache"))
    reads = []
    real_load = weights_cache.load
    monkeypatch.setattr(weights_cache, "load", lambda folder, dtype: reads.append(folder) or real_load(folder, dtype))

    cold = TransformersLLM(threads=1)
    cold.load()
    [folder] = (tmp_path / "cache" / "weights").iterdir()
    assert weights_cache.is_complete(folder) and not reads
    if cold.sampling_decoder is not cold.greedy_decoder:  # the bfloat16 copy is cached beside it
        assert weights_cache.is_complete(folder, weights_cache.weights_file("bfloat16"))
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left

    warm = TransformersLLM(threads=1)
    warm.load()
    assert reads == [folder]
    assert _greedy(warm) == _greedy(cold)
    cold_state, warm_state = cold.model.state_dict(), warm.model.state_dict()
    assert all((cold_state[k] == warm_state[k]).all() for k in cold_state)
    assert warm.model.lm_head.weight.data_ptr() == warm.model.model.embed_tokens.weight.data_ptr()  # still tied

    weights = folder / weights_cache.WEIGHTS
    with open(weights, "r+b") as handle:  # one flipped byte deep in the tensors
        handle.seek(weights.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert not weights_cache.is_complete(folder)
    capsys.readouterr()
    rebuilt = TransformersLLM(threads=1)
    rebuilt.load()
    assert "incomplete or corrupt; rebuilding them" in capsys.readouterr().err
    assert reads == [folder] and weights_cache.is_complete(folder)
    assert _greedy(rebuilt) == _greedy(cold)

    os.truncate(weights, 1000)  # a cut-off file: caught by its size before any read
    assert not weights_cache.is_complete(folder)
    (folder / weights_cache.MANIFEST).unlink()
    assert not weights_cache.is_complete(Path(folder))
