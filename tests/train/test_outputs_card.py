"""Training outputs a user would publish: the base model by its Hub id, a model card that tells
the data's story, the recipe and the figures, a merged model in bf16, and a terminal that shows
a progress bar rather than a dict per step (issue 18, items 5 and 6)."""

import json

import pytest
from train_helpers import TINY, train, write_pairs

from notos.train.card import base_model_id, data_story, publishable_adapter, write_card
from notos.train.config import DPORecipe
from notos.train.models import EMBEDDED_HUB_ID, RUN_MARKER


def curated_chain(tmp_path):
    """A run folder, an audit of it and a binarize of the audit, as their folders record them."""
    run, audit, pairs = tmp_path / "qs", tmp_path / "audit", tmp_path / "pairs"
    for folder in (run, audit, pairs):
        folder.mkdir()
    (run / "manifest.json").write_text(json.dumps({"pipeline": "quickstart", "rows": {"dataset": 20}}))
    (audit / "config.json").write_text(json.dumps({"tool": "notos curate", "command": "audit", "input": str(run),
                                                   "options": {"max_gap": 0.5}}))
    (audit / "stats.json").write_text(json.dumps({"prompts": 20, "completions": 60, "flagged": 4}))
    (pairs / "config.json").write_text(json.dumps({"tool": "notos curate", "command": "binarize", "input": str(audit),
                                                   "options": {"strategy": "mean", "min_margin": 0.0, "jsonl": False}}))
    (pairs / "stats.json").write_text(json.dumps({"prompts": 20, "pairs": 17}))
    return pairs


def test_the_card_follows_the_data_back_and_names_the_hub_base(tmp_path):
    pairs = curated_chain(tmp_path)
    recipe = DPORecipe(data=str(pairs), max_steps=8, eval_fraction=0.1)
    assert data_story(recipe) == [
        "- `notos curate binarize` (strategy mean, min_margin 0.0): pairs 17, prompts 20, from `audit`",
        "- `notos curate audit` (max_gap 0.5): prompts 20, completions 60, flagged 4, from `qs`",
        "- `notos run quickstart` (dataset 20 rows), run folder `qs`",
        "- 10% held out for evaluation (seed 42)"]
    (tmp_path / "out" / "model").mkdir(parents=True)
    summary = {"steps": 8, "train_rows": 15, "eval_rows": 2, "final_loss": 0.41, "final_rewards/accuracies": 0.875}
    card = write_card(tmp_path / "out" / "model", recipe, summary, EMBEDDED_HUB_ID, merged=False).read_text()
    head = card.split("---")[1]
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in head and "library_name: peft" in head
    assert "# out: DPO of HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert "| beta | 0.1 |" in card and "| optimizer steps | 8 |" in card and "| final training loss | 0.41 |" in card
    assert "Q4_1 GGUF" in card  # trained on the embedded copy: said, not hidden
    assert str(tmp_path) not in card  # local folders by name only
    hub = write_card(tmp_path / "out" / "model", DPORecipe(model="org/base", data="hf://org/pairs", method="full"), {},
                     "org/base", merged=False).read_text()
    assert "datasets:\n- org/pairs" in hub and "library_name: transformers" in hub and "No figures were recorded." in hub


def test_base_model_id_and_publishable_adapter(tmp_path):
    assert base_model_id("embedded") == EMBEDDED_HUB_ID and base_model_id("org/name") == "org/name"
    earlier = tmp_path / "sft"
    (earlier / "model").mkdir(parents=True)
    (earlier / RUN_MARKER).write_text("{}")
    (earlier / "config.yaml").write_text(f"model: embedded\nbase_model: {EMBEDDED_HUB_ID}\n")
    assert base_model_id(str(earlier)) == EMBEDDED_HUB_ID  # a stage trained on a stage: the original base
    (tmp_path / "mine").mkdir()
    assert base_model_id(str(tmp_path / "mine")) == "mine"
    (earlier / "model" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/root/.cache/x", "r": 8}))
    publishable_adapter(earlier / "model", EMBEDDED_HUB_ID)
    assert json.loads((earlier / "model" / "adapter_config.json").read_text()) == {
        "base_model_name_or_path": EMBEDDED_HUB_ID, "r": 8}


@pytest.mark.slow  # trains the embedded model
def test_a_trained_folder_is_publishable_and_still_loads_offline(tmp_path, capsys, monkeypatch):
    data = write_pairs(tmp_path / "data" / "pairs.jsonl", 4)
    out = tmp_path / "dpo"
    train("quickstart-dpo", out, *TINY, "max_steps=2", "merge=true", data=str(data))
    err = capsys.readouterr().err
    assert "step 2/2" in err and "{'loss'" not in err  # one line per step here (not a terminal), no dicts
    assert "FutureWarning" not in err and "Tokenizing" not in err
    adapter = json.loads((out / "model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == EMBEDDED_HUB_ID
    card = (out / "model" / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "| optimizer steps | 2 |" in card
    assert "More Information Needed" not in card  # not PEFT's blank template
    merged = json.loads((out / "merged" / "config.json").read_text())
    assert merged["dtype"] == "bfloat16"
    assert "Weights saved in bfloat16" in (out / "merged" / "README.md").read_text()
    # The Hub id in the adapter does not send a local load to the network: the folder says it
    # was trained on the embedded model.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from notos.train.models import load_adapter_model

    model = load_adapter_model(out / "model")
    assert model.peft_config["default"].base_model_name_or_path == EMBEDDED_HUB_ID
