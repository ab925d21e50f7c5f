"""Curation reads what the `ultrafeedback` recipe writes: the run folder, its leaf, and the
one-overall-rating variant, every LLM at the loopback server."""

from test_ultrafeedback_recipe import pool_args

from notos.curate.binarize import binarize, binarize_stats
from notos.data.records import prompt_ids, read_completions, read_raw
from notos.pipeline import load_run


def test_the_recipe_run_folder_reads_as_completions(llm_server, cli, tmp_path):
    out = tmp_path / "uf"
    done = cli("run", "ultrafeedback", "--out", out, "--no-progress", "--limit", "8", *pool_args(llm_server), timeout=300)
    assert done.returncode == 0, done.stderr
    records = load_run(out)["records"].to_list()
    c = read_completions(out)
    assert c.aspects == ["instruction_following", "honesty", "truthfulness", "helpfulness"]
    assert c.table.num_rows == 8 * 3 and c.num_prompts == 8
    # The leaf folder (with its _notos.json beside the parts) reads the same.
    assert read_completions(out / "data" / "records").table.equals(c.table)
    rows = c.table.to_pylist()
    by_id = {r["row_id"]: r for r in records}
    assert set(prompt_ids(read_raw(out)).to_pylist()) == set(by_id)
    for row in rows:
        record = by_id[row["prompt_id"]]
        completion = record["completions"][row["completion_index"]]
        assert row["prompt"] == record["instruction"] and row["source"] == record["source"]
        assert row["model"] == completion["model"] and row["response"] == completion["response"]
        # The loopback judge rates 3 and the critic scores 5 when a text holds no [d] digit.
        assert [row[f"rating_{a}"] for a in c.aspects] == [3.0] * 4
        assert row["overall_score"] == 5.0 and row["critique"].startswith("Feedback:")
        assert row["rationale_truthfulness"] == completion["annotations"]["truthfulness"]["Rationale For Rating"]
    # Every response rated alike: no prompt gives a pair, and the stats say why.
    pairs = binarize(c, "mean")
    assert pairs.num_rows == 0
    assert binarize_stats(pairs)["dropped"]["all_tied"] == 8


def test_the_overall_rating_variant_reads_as_one_aspect(llm_server, cli, tmp_path):
    out = tmp_path / "uf"
    done = cli("run", "ultrafeedback", "--out", out, "--no-progress", "--limit", "4", *pool_args(llm_server),
               "--set", "critique.enabled=false", "--set", "rate.aspects=overall-rating", timeout=300)
    assert done.returncode == 0, done.stderr
    c = read_completions(out)
    assert c.aspects == ["overall_rating"]
    assert c.table.column("rating_overall_rating").to_pylist() == [3.0] * 12
    assert c.table.column("overall_score").null_count == 12
