"""The reward model: trained on easy pairs it ranks held-out chosen above rejected, and it scores
responses in a notos pipeline (the UltraRM role)."""

import pytest
from train_helpers import PAIRS, train

from notos.errors import GraphError
from notos.train.data import preference_rows, split_off

pytestmark = pytest.mark.slow  # training on the embedded model


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "rm"
    (summary,) = train("quickstart-rm", out, "max_steps=8", "batch_size=4", "save_steps=100", "max_length=96")
    return out, summary


def held_out_pairs():
    _, held = split_off(preference_rows(str(PAIRS)), 0.2, seed=42)  # the recipe's split: eval_fraction 0.2, seed 42
    return held


def test_reward_model_ranks_held_out_chosen_above_rejected(reward_model):
    out, summary = reward_model
    assert summary["heldout_pairs"] == 8
    assert summary["heldout_accuracy"] >= 0.75  # chance is 0.5
    assert (out / "model" / "adapter_model.safetensors").exists() and (out / "report.html").exists()


def test_reward_score_step_in_a_pipeline(reward_model, tmp_path):
    from notos.pipeline import Pipeline, load_run, run
    from notos.recipes import build_pipeline
    from notos.train.reward_step import reward_score

    out, _ = reward_model
    held = held_out_pairs()
    rows = [{"instruction": p["prompt"][0]["content"], "generations": [p["chosen"][0]["content"], p["rejected"][0]["content"]]}
            for p in held]
    config = {"name": "score", "steps": [
        {"name": "rows", "type": "from_rows", "rows": rows},
        {"name": "reward", "type": "reward_score", "after": "rows", "model_path": str(out), "batch_size": 4},
    ]}
    run(build_pipeline(config), tmp_path / "run", progress=False)
    scored = load_run(tmp_path / "run")["reward"].to_list()
    assert len(scored) == len(held)
    assert all(len(r["reward_scores"]) == 2 and all(isinstance(s, float) for s in r["reward_scores"]) for r in scored)
    wins = sum(r["reward_scores"][0] > r["reward_scores"][1] for r in scored)
    assert wins / len(scored) >= 0.75
    assert isinstance(build_pipeline(config), Pipeline)
    with pytest.raises(GraphError, match="no such folder"):
        reward_score(tmp_path / "nothing")
