"""TRL's and the alignment handbook's flag names as aliases of recipe keys, any recipe key as a
flag, and `--dry-run` checking the data's columns (issue 18, items 6 and 8)."""

import json

import pytest
from train_helpers import PAIRS
from typer.testing import CliRunner

from notos.errors import NotosError
from notos.train.aliases import canonical, split_flags
from notos.train.cli import train_app
from notos.train.recipes import load_recipe

runner = CliRunner()


def test_trl_names_map_to_recipe_keys(tmp_path):
    assert canonical("model_name_or_path", "embedded") == ("model", "embedded")
    assert canonical("num_train_epochs", 3) == ("epochs", 3)
    assert canonical("per-device-train-batch-size", 8) == ("batch_size", 8)
    assert canonical("use_peft", False) == ("method", "full") and canonical("bf16", True) == ("precision", "bf16")
    # --dataset_name is a Hub id in TRL's scripts; a local path stays a path.
    assert canonical("dataset_name", "HuggingFaceH4/ultrafeedback_binarized") == ("data", "hf://HuggingFaceH4/ultrafeedback_binarized")
    (tmp_path / "pairs").mkdir()
    assert canonical("dataset_name", str(tmp_path / "pairs")) == ("data", str((tmp_path / "pairs").resolve()))
    with pytest.raises(NotosError, match="use_peft: expected true or false"):
        canonical("use_peft", "maybe")


def test_flags_become_set_items_and_output_dir_is_out():
    items, out = split_flags(["--learning_rate", "1e-4", "--model_name_or_path=embedded", "--bf16", "--output_dir", "runs/x",
                              "--max-steps", "3"])
    assert items == ["learning_rate=1e-4", "model_name_or_path=embedded", "bf16=true", "max_steps=3"] and out == "runs/x"
    with pytest.raises(NotosError, match="unexpected argument 'stray'"):
        split_flags(["stray"])


def test_aliases_in_set_and_yaml_and_numbers_without_a_dot(tmp_path):
    r = load_recipe("quickstart-dpo", ["learning_rate=1e-4", "num_train_epochs=2", "per_device_train_batch_size=2"]).stages[0].recipe
    assert (r.learning_rate, r.epochs, r.batch_size) == (1e-4, 2, 2)
    yaml_file = tmp_path / "mine.yaml"
    yaml_file.write_text(f"kind: dpo\nmodel_name_or_path: embedded\nlr_scheduler_type: cosine\ndata: {PAIRS}\nlearning_rate: 5e-7\n")
    r = load_recipe(str(yaml_file)).stages[0].recipe
    assert (r.model, r.lr_scheduler, r.learning_rate) == ("embedded", "cosine", 5e-7)


def test_cli_takes_trl_flags(tmp_path):
    done = runner.invoke(train_app, ["dpo", "--recipe", "quickstart-dpo", "--dry-run", "--learning_rate", "2e-4",
                                     "--num_train_epochs", "2", "--beta", "0.3", "--output_dir", str(tmp_path / "o")])
    assert done.exit_code == 0, done.output
    assert "learning_rate: 0.0002" in done.output and "epochs: 2" in done.output and "beta: 0.3" in done.output
    assert "recipe and data are valid" in done.output and not (tmp_path / "o").exists()
    clash = runner.invoke(train_app, ["dpo", "--recipe", "quickstart-dpo", "--out", str(tmp_path / "a"), "--output_dir",
                                      str(tmp_path / "b")])
    assert isinstance(clash.exception, NotosError) and "disagree" in str(clash.exception)


def test_dry_run_checks_the_columns_and_points_to_binarize(tmp_path):
    rated = tmp_path / "rated.jsonl"
    rated.write_text(json.dumps({"instruction": "Name a colour.", "generations": ["Blue.", "A car."], "ratings": [5, 1]}) + "\n")
    done = runner.invoke(train_app, ["dpo", "--recipe", "quickstart-dpo", "--data", str(rated), "--dry-run"])
    message = str(done.exception)
    assert isinstance(done.exception, NotosError) and message.startswith(f"--data {rated}: no column 'chosen'")
    assert "notos curate binarize" in message
    missing = runner.invoke(train_app, ["dpo", "--recipe", "quickstart-dpo", "--data", str(tmp_path / "nope"), "--dry-run"])
    assert "nope: no such file or folder" in str(missing.exception)
