"""The shipped `synthesize` recipe through the CLI, every LLM at the loopback server:
seeds -> Self-Instruct -> Evol-Instruct (2 rounds) -> answers -> quality filter."""

import json

from notos.pipeline import load_run


def test_seeds_grow_evolve_and_get_filtered(llm_server, cli, tmp_path):
    out = tmp_path / "syn"
    done = cli("run", "synthesize", "--out", out, "--no-progress", "--llm-base-url", llm_server.base_url, timeout=300)
    assert done.returncode == 0, done.stderr
    result = load_run(out)
    judged = result["judgments"].to_list()
    kept = result["dataset"].to_list()
    # 16 seeds x 4 new instructions, each evolved twice, answered and judged.
    assert len(judged) == 64 and all(r["quality_keep"] is True for r in judged)
    assert len(kept) == 64
    for row in kept:
        assert row["instruction"].count("Answer in exactly three numbered steps") == 2  # two evolution rounds
        assert row["original_instruction"].startswith("Describe subject ")
        assert len(row["evol_methods"]) == 2 and row["seed_instruction"]
        assert row["generation"] == f"Answer to: {row['instruction']}" and row["quality_score"] == 8
    # Child ids point back at their seed.
    assert {r["row_id"].rsplit(".", 1)[0] for r in kept} == {f"seed-{i:02d}" for i in range(16)}


def test_failed_evolutions_and_dropped_pairs_are_accounted_for(llm_server, cli, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    texts = ["Plan a garden [drop]", "Explain tides [same]"] + [f"Describe planet number {i}" for i in range(6)]
    seeds.write_text("".join(json.dumps({"instruction": t}) + "\n" for t in texts))
    out = tmp_path / "syn"
    done = cli("run", "synthesize", "--input", seeds, "--out", out, "--no-progress",
               "--llm-base-url", llm_server.base_url, "--set", "batch_size=2", timeout=300)
    assert done.returncode == 0, done.stderr
    result = load_run(out)
    judged, kept = result["judgments"].to_list(), result["dataset"].to_list()
    invented = [req for req in llm_server.requests if "Invent 4 new" in req["messages"][-1]["content"]]
    carries_same = sum("[same]" in req["messages"][-1]["content"] for req in invented)
    carries_drop = sum("[drop]" in req["messages"][-1]["content"] for req in invented)
    assert carries_same and carries_drop  # the markers reached some prompts through the examples
    # A [same] instruction never evolves: it is dropped before it is answered, and the CLI says so.
    assert not any("[same]" in r["instruction"] for r in judged)
    assert len(judged) == 8 * 4 - carries_same
    assert "evolution failed" in done.stderr
    # A [drop] answer is judged DROP with its reason, and left out of the dataset.
    dropped = [r for r in judged if "[drop]" in r["instruction"]]
    assert len(dropped) == carries_drop
    assert all(r["quality_keep"] is False and "does not address" in r["quality_reason"] for r in dropped)
    assert len(kept) == len(judged) - len(dropped) and not any("[drop]" in r["instruction"] for r in kept)
