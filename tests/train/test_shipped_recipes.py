"""Every shipped recipe runs, so none rots: on the embedded model with tiny limits (one step,
two rows, 48 tokens), everything else as shipped: full fine-tuning with an explicit reference,
LoRA, gradient checkpointing, packing, stages. QLoRA recipes run with QLoRA turned into LoRA
(on CPU QLoRA itself is a one-line error: test_train_config.py)."""

import json

import pytest
from train_helpers import CONVERSATIONS, PAIRS, TINY, train

from notos.train.recipes import load_recipe, shipped_names

pytestmark = pytest.mark.slow  # training on the embedded model

# Hub data and eval sets of the GPU recipes are swapped for the bundled files.
LOCAL = ["data_split=null", "eval_data=null"]


@pytest.mark.parametrize("name", [n for n in shipped_names() if not load_recipe(n).staged])
def test_plain_recipe_smoke(name, tmp_path):
    recipe = load_recipe(name).stages[0].recipe
    data = CONVERSATIONS if recipe.kind == "sft" else PAIRS
    # A reward model reports held-out accuracy; RewardTrainer drops pairs longer than max_length.
    extra = ["limit=4", "eval_fraction=0.5", "max_length=96"] if recipe.kind == "rm" else []
    (summary,) = train(name, tmp_path / name, *TINY, *LOCAL, *extra, data=str(data))
    assert summary["steps"] == 1 and summary["kind"] == recipe.kind
    model = tmp_path / name / "model"
    weights = "model.safetensors" if recipe.method == "full" else "adapter_model.safetensors"
    assert (model / weights).exists() and (model / "tokenizer.json").exists()
    assert (tmp_path / name / "report.html").exists()


def test_sft_packing_smoke(tmp_path):
    (summary,) = train("quickstart-sft", tmp_path / "packed", *TINY, "packing=true", "limit=4", "batch_size=2")
    assert summary["steps"] == 1


def test_staged_recipes_smoke(tmp_path):
    for name in [n for n in shipped_names() if load_recipe(n).staged]:
        out = tmp_path / name
        summaries = train(name, out, *TINY, *LOCAL, "method=lora", f"data={PAIRS}")
        recipe = load_recipe(name)
        assert [s["stage"] for s in summaries] == [s.name for s in recipe.stages]
        stage_dirs = sorted((out / "stages").iterdir())
        assert len(stage_dirs) == len(recipe.stages)
        # Each stage starts from the one before: its model is the previous stage's, merged.
        second = json.loads((stage_dirs[1] / "notos-train.json").read_text())
        assert second["steps"] == 1
        assert (stage_dirs[0] / "merged" / "model.safetensors").exists()
        import yaml

        assert yaml.safe_load((stage_dirs[1] / "config.yaml").read_text())["model"] == str(stage_dirs[0])
        assert json.loads((out / "notos-train.json").read_text())["final_stage"] == str(stage_dirs[-1])
