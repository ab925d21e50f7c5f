"""Fixtures for the training tests: the embedded model converted once per session."""

import pytest


@pytest.fixture(scope="session")
def base_dir() -> str:
    from notos.train.models import embedded_model_dir

    return str(embedded_model_dir())


@pytest.fixture(scope="session")
def base_model(base_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(base_dir).eval(), AutoTokenizer.from_pretrained(base_dir)
