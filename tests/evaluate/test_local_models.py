"""A training output folder given as --model is the model it trained (issue 18, item 1)."""

import json

import pytest

from notos.errors import NotosError
from notos.evaluate.local_models import local_spec


def train_output(folder, *subs):
    folder.mkdir(parents=True)
    (folder / "notos-train.json").write_text("{}")
    for sub in subs:
        (folder / sub).mkdir()
        (folder / sub / ("adapter_config.json" if sub == "adapter" else "config.json")).write_text("{}")
    return folder


def test_training_outputs_resolve_to_their_merged_or_full_model(tmp_path):
    assert local_spec(str(train_output(tmp_path / "a", "merged", "model"))) == f"transformers:{tmp_path / 'a' / 'merged'}"
    assert local_spec(str(train_output(tmp_path / "b", "model"))) == f"transformers:{tmp_path / 'b' / 'model'}"
    staged = tmp_path / "staged"
    staged.mkdir()
    final = train_output(staged / "stages" / "02-dpo", "merged")
    (staged / "notos-train.json").write_text(json.dumps({"final_stage": str(final)}))
    assert local_spec(str(staged)) == f"transformers:{final / 'merged'}"
    plain = tmp_path / "hf"
    plain.mkdir()
    (plain / "config.json").write_text("{}")
    assert local_spec(str(plain)) == f"transformers:{plain}"


def test_specs_pass_through_and_an_adapter_alone_says_how_to_merge(tmp_path):
    for spec in ("embedded", "openai:gpt-4o", "http://127.0.0.1:8000/v1", "transformers:x", str(tmp_path / "nowhere")):
        assert local_spec(spec) == spec
    adapter_only = train_output(tmp_path / "lora")
    (adapter_only / "model").mkdir()
    (adapter_only / "model" / "adapter_config.json").write_text("{}")
    with pytest.raises(NotosError, match=r"--model .*lora: this training output holds a LoRA adapter and no merged model; "
                                          r"rerun the same `notos train` command with --set merge=true"):
        local_spec(str(adapter_only))
    with pytest.raises(NotosError, match=r"--baseline .*model: a LoRA adapter alone"):
        local_spec(str(adapter_only / "model"), "--baseline")
