"""The README's main command: the quickstart recipe end to end through the CLI."""

import json

import pytest

from notos.pipeline import load_run

GENERATORS = ("answer_helpful", "answer_honest", "answer_terse")
# The real model, fewer tokens: the suite stays quick.
SHORT = tuple(a for g in GENERATORS for a in ("--set", f"{g}.max_new_tokens=16"))
TINY = tuple(a for g in GENERATORS for a in ("--set", f"{g}.max_new_tokens=4"))


@pytest.mark.slow  # the embedded model or lm-eval on it
def test_quickstart_runs_end_to_end_and_resumes(cli, tmp_path):
    out = tmp_path / "qs"
    first = cli("run", "quickstart", "--out", out, "--no-progress", *SHORT, timeout=600)
    assert first.returncode == 0, first.stderr
    data = load_run(out)["dataset"].to_list()
    # 22 bundled prompts: "hi" is too short and one prompt repeats after tidying.
    assert len(data) == 20
    assert all(r["instruction"] == r["instruction"].strip() and r["n_words"] >= 3 for r in data)
    assert len({r["instruction"].casefold() for r in data}) == 20
    assert {r["row_id"] for r in data} >= {"qs-00", "qs-19"}  # ids come from the file's id column
    # Answered three times by the embedded model, for real, and rated 1-5 from its probabilities.
    assert all(len(r["generations"]) == 3 and all(g.strip() for g in r["generations"]) for r in data)
    assert all(r["generation_models"] == ["SmolLM2-135M-Instruct"] * 3 for r in data)
    assert all(all(x in (1, 2, 3, 4, 5) for x in r["ratings"]) and len(r["ratings_expected"]) == 3 for r in data)
    assert {r["rating_model"] for r in data} == {"SmolLM2-135M-Instruct"}
    assert (out / "pipeline.yaml").exists() and (out / "stats.json").exists()
    # It says plainly that the ratings are the small model's, and how to get real ones.
    assert "ratings show the mechanics, not quality" in " ".join(first.stdout.split())
    assert "--set rate.llm=openai:gpt-4o-mini" in first.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["rows"] == {"dataset": 20}

    again = cli("run", "quickstart", "--out", out, "--no-progress", *SHORT, timeout=600)
    assert again.returncode == 0, again.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tidy"]["rows_in"] == 0  # resumed: nothing recomputed
    assert load_run(out)["dataset"].to_list() == data


@pytest.mark.slow  # the embedded model or lm-eval on it
def test_quickstart_on_user_input_with_limit(cli, tmp_path):
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"instruction": f"tell me a fact about the number {i}"}) + "\n" for i in range(12)))
    out = tmp_path / "mine-run"
    done = cli("run", "quickstart", "--input", mine, "--limit", 8, "--out", out, "--no-progress", *TINY, timeout=600)
    assert done.returncode == 0, done.stderr
    first = load_run(out)["dataset"].to_list()
    assert len(first) == 8
    more = cli("run", "quickstart", "--input", mine, "--out", out, "--no-progress", *TINY, timeout=600)
    assert more.returncode == 0, more.stderr
    both = load_run(out)["dataset"].to_list()
    assert len(both) == 12
    kept = {r["row_id"]: r for r in both}
    # The limit is one whole batch (the recipe's batch_size is 8): that batch is committed and kept as it was.
    assert all(kept[r["row_id"]]["generations"] == r["generations"] for r in first)


def test_dry_run_prints_the_plan_and_writes_nothing(cli, tmp_path):
    done = cli("run", "quickstart", "--dry-run", "--out", tmp_path / "none")
    assert done.returncode == 0, done.stderr
    assert "pipeline 'quickstart' is valid" in done.stdout
    assert not (tmp_path / "none").exists()
