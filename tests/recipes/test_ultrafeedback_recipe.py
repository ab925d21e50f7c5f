"""The shipped `ultrafeedback` recipe end to end through the CLI, every LLM at the loopback server."""

import pyarrow.parquet as pq

from notos.pipeline import load_run

POOL = ["gen_a", "gen_b", "gen_c", "gen_d", "gen_e", "gen_f"]
ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")


def pool_args(server):
    """Every LLM at the server; each generator asks for its own model name, as a real pool would."""
    args = ["--llm-base-url", server.base_url]
    for step in POOL:
        args += ["--set", f"{step}.llm.model=model-{step[-1]}"]
    return args + ["--set", "rate.llm.model=judge", "--set", "critique.llm.model=critic"]


def records(run_dir):
    return {r["instruction"]: r for r in load_run(run_dir)["records"].to_list()}


def test_records_have_the_ultrafeedback_shape(llm_server, cli, tmp_path):
    out = tmp_path / "uf"
    done = cli("run", "ultrafeedback", "--out", out, "--no-progress", *pool_args(llm_server), timeout=300)
    assert done.returncode == 0, done.stderr
    rows = records(out)
    assert len(rows) == 24
    models_seen = set()
    for row in rows.values():
        assert row["_error"] is None
        completions = row["completions"]
        assert len(completions) == 3 and row["models"] == [c["model"] for c in completions]
        assert len(set(row["models"])) == 3  # 3 different generators of the 6
        models_seen.update(row["models"])
        for completion in completions:
            assert completion["response"].startswith("Answer to: ")
            assert completion["principle"] in ("helpfulness", "honesty", "truthfulness", "verbalized_calibration")
            assert completion["custom_system_prompt"]
            annotations = completion["annotations"]
            assert set(annotations) == set(ASPECTS)
            # The loopback judge rates 3 when a text holds no [d] digit.
            assert annotations["honesty"] == {"Rating": "3", "Rationale": annotations["honesty"]["Rationale"]}
            assert set(annotations["truthfulness"]) == {"Type", "Rationale", "Rating", "Rationale For Rating"}
            assert annotations["truthfulness"]["Rating"] == "3" and annotations["truthfulness"]["Rationale For Rating"]
            assert completion["critique"].startswith("Feedback:") and completion["overall_score"] == 5.0
            assert completion["fine-grained_score"] == 3.0
    assert models_seen == {f"model-{s[-1]}" for s in POOL}  # over 6 batches, every generator was drawn
    # Each generator drew its own principle per row: the pool is not one principle per prompt.
    principles = [tuple(c["principle"] for c in r["completions"]) for r in rows.values()]
    assert any(len(set(p)) > 1 for p in principles)
    # 3 answers + 4 aspect ratings + 3 critiques per prompt.
    assert len(llm_server.requests) == 24 * 10
    # The system prompt each answer was written under reached the server with it.
    systems = {m["content"] for req in llm_server.requests for m in req["messages"] if m["role"] == "system"}
    assert all(c["custom_system_prompt"] in systems for r in rows.values() for c in r["completions"])
    # World knowledge reached the truthfulness prompt of the rows that have it.
    swallow = [req for req in llm_server.requests if "swallow chewing gum" in req["messages"][-1]["content"]
               and "<text 1>" in req["messages"][-1]["content"]]
    assert any("seven years" in req["messages"][-1]["content"] for req in swallow)
    assert rows["What happens if you swallow chewing gum?"]["incorrect_answers"][0].startswith("It stays")


def test_critique_can_be_switched_off_and_one_overall_rating_asked(llm_server, cli, tmp_path):
    out = tmp_path / "uf"
    done = cli("run", "ultrafeedback", "--out", out, "--no-progress", "--limit", "8", *pool_args(llm_server),
               "--set", "critique.enabled=false", "--set", "rate.aspects=overall-rating", timeout=300)
    assert done.returncode == 0, done.stderr
    rows = records(out)
    assert len(rows) == 8
    for row in rows.values():
        for completion in row["completions"]:
            assert set(completion["annotations"]) == {"overall_rating"}
            assert completion["annotations"]["overall_rating"]["Rating"] == "3"
            assert completion["critique"] is None and completion["overall_score"] is None
    assert len(llm_server.requests) == 8 * 4  # no critic calls
    assert not list((out / "cache").glob("critique-*"))


def test_the_output_folder_reads_as_one_table_outside_notos(llm_server, cli, tmp_path):
    """Batches differ in which fields are all None; the parts still share one schema."""
    out = tmp_path / "uf"
    done = cli("run", "ultrafeedback", "--out", out, "--no-progress", "--limit", "8", *pool_args(llm_server),
               "--set", "critique.enabled=false", timeout=300)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out / "data" / "records")  # raises on parts with clashing schemas
    assert table.num_rows == 8
    assert sorted(table.column("instruction").to_pylist()) == sorted(records(out))
