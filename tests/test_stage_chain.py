"""Every notos output is a valid input to the next stage, as it is: quickstart -> curate audit ->
curate binarize -> train dpo -> eval winrate, through the CLI on the embedded model, each stage
given the previous stage's output folder and nothing else (issue 18, item 1)."""

import json

import pytest

GENERATORS = ("answer_helpful", "answer_honest", "answer_terse")
FEW_TOKENS = tuple(a for g in GENERATORS for a in ("--set", f"{g}.max_new_tokens=12"))
PROMPTS = ["Name three primary colors.", "What is the capital city of France?", "Give one tip for sleeping better.",
           "Explain what a noun is.", "Suggest a name for a small cat.", "Why is the sky blue during the day?"]


@pytest.mark.slow  # the embedded model answers, rates, trains and judges
def test_quickstart_to_winrate_each_stage_reads_the_last_folder(cli, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"instruction": p}) + "\n" for p in PROMPTS))
    run, audit, pairs, dpo, wr = (tmp_path / name for name in ("qs", "audit", "pairs", "dpo", "winrate"))

    done = cli("run", "quickstart", "--input", prompts, "--out", run, "--no-progress", *FEW_TOKENS, timeout=900)
    assert done.returncode == 0, done.stderr

    done = cli("curate", "audit", run, "--out", audit)
    assert done.returncode == 0, done.stderr
    stats = json.loads((audit / "stats.json").read_text())
    # The rated generations are read as they are: 6 prompts x 3 answers, the aspect named as the recipe rated it.
    assert stats["prompts"] == 6 and stats["completions"] == 18
    assert "overall_rating" in json.dumps(stats)

    done = cli("curate", "binarize", audit, "--out", pairs)
    assert done.returncode == 0, done.stderr
    binarized = json.loads((pairs / "stats.json").read_text())
    assert binarized["prompts"] == 6 and binarized["pairs"] >= 1

    done = cli("train", "dpo", "--recipe", "quickstart-dpo", "--data", pairs, "--out", dpo, "--max_steps", "2",
               "--set", "eval_fraction=0", "--set", "merge=true", timeout=900)
    assert done.returncode == 0, done.stderr
    assert "step 2/2" in done.stderr and "{'loss'" not in done.stdout + done.stderr  # a bar, not a dict per step
    card = (dpo / "model" / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "`notos curate binarize`" in card
    assert "`notos run quickstart`" in card  # the data's story, followed back through the audit
    assert json.loads((dpo / "merged" / "config.json").read_text())["dtype"] == "bfloat16"

    # The training folder itself is the model to evaluate; the baseline is the model it started from.
    done = cli("eval", "winrate", "--model", dpo, "--baseline", "embedded", "--judge", "embedded",
               "--instructions", prompts, "--limit", 3, "--max-new-tokens", 12, "--judge-max-new-tokens", 8,
               "--out", wr, "--no-progress", "--json", timeout=900)
    assert done.returncode == 0, done.stderr
    summary = json.loads((wr / "summary.json").read_text())
    assert summary["n_total"] + summary["n_missing"] == 3
    config = json.loads((wr / "config.json").read_text())
    assert "merged" in json.dumps(config["model"])
