"""`notos curate all` and the one-pass engine under every command: the same results in batches as
at once, ids that survive a chain of commands, a report drawn without the input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from notos.curate.onepass import Plan, Strategy, run_plan

ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
WORDS = ["river", "garden", "lamp", "budget", "travel", "recipe", "planet", "window", "engine", "market", "paper", "violin", "harbor", "winter", "pencil", "museum", "ladder", "castle", "forest", "mirror", "rocket", "island", "bridge", "tunnel", "silver"]


def prompt_text(rng: random.Random, i: int) -> str:
    return f"Question {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 40))) + "?"


def record(rng: random.Random, i: int, source: str = "sharegpt", instruction: str | None = None) -> dict:
    completions = []
    for k in range(4):
        ratings = [rng.randint(1, 5) for _ in ASPECTS]
        annotations = {}
        for aspect, rating in zip(ASPECTS, ratings):
            note = {"Rating": str(rating), "Rationale": "The text is accurate and helpful." if rating >= 4
                    else "The text is vague in places."}
            if aspect in ("truthfulness", "helpfulness"):
                note = {"Type": ["1"], "Rationale": "Typed.", "Rating": str(rating),
                        "Rationale For Rating": note["Rationale"]}
            annotations[aspect] = note
        overall = round(1 + (sum(ratings) / 4 - 1) * 9 / 4, 1)
        completions.append({"model": f"model-{(i + k) % 5}", "response": f"Answer {k} to {i}: " + " ".join(
            rng.choice(WORDS) for _ in range(rng.randint(5, 30))), "annotations": annotations,
            "critique": f"Critique of answer {k}.", "overall_score": overall})
    return {"source": source, "instruction": instruction or prompt_text(rng, i),
            "models": [c["model"] for c in completions], "completions": completions}


def dataset(tmp_path: Path, n: int = 60, row_group: int = 7) -> tuple[Path, Path, list[dict]]:
    """UltraFeedback records with planted problems; Parquet in small row groups (many batches)."""
    rng = random.Random(3)
    records = [record(rng, i) for i in range(n)]
    records[5]["source"] = "truthful_qa"
    leaked = "Describe the water cycle for a class of ten year old children in five short and friendly steps"
    records[9]["instruction"] = leaked
    records[12]["instruction"] = records[3]["instruction"].upper()  # an exact copy
    words = records[20]["instruction"].split()
    words[4] = "zebra"
    records[31]["instruction"] = " ".join(words)  # a near copy: one word changed
    bad = records[7]["completions"][2]  # Notus's case: a 10 over ratings of 1
    bad["overall_score"] = 10.0
    for aspect in ASPECTS:
        bad["annotations"][aspect]["Rating"] = "1"
    records[8]["completions"][1]["annotations"]["honesty"]["Rating"] = "N/A"
    path = tmp_path / "uf.parquet"
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=row_group)
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question_id": 1, "turns": [leaked, "Now for adults."]}) + "\n")
    return path, bench, records


def full_plan(bench: Path, batch_size) -> Plan:
    return Plan(decontaminate={"benchmark": [bench]}, dedup={}, audit={},
                strategies=[Strategy("mean", "data"), Strategy("overall", "pairs_overall")],
                compare=("overall", "mean"), batch_size=batch_size)


def test_batches_give_the_same_results_as_one_pass_over_everything(tmp_path):
    path, bench, _ = dataset(tmp_path)
    results = {}
    for size in (3, None):
        folder = tmp_path / f"out{size}"
        folder.mkdir()
        result = run_plan(path, "auto", full_plan(bench, size), folder)
        results[size] = (result, {name: pq.read_table(folder / f"{name}.parquet")
                                  for name in ("data", "pairs_overall", "flags")})
    (small, small_files), (whole, whole_files) = results[3], results[None]
    for name in small_files:
        assert small_files[name].equals(whole_files[name]), name
    assert small.audit == whole.audit and small.binarize == whole.binarize and small.compare == whole.compare
    assert small.tally.to_json() == whole.tally.to_json()
    assert small.removals.column("prompt_id").to_pylist() == ["5", "9"]
    assert small.clusters.filter(pa.compute.invert(small.clusters.column("kept"))).column("prompt_id").to_pylist() \
        == ["12", "31"]
    assert small.completions == 4 * 56
    assert {"7"} <= {r["prompt_id"] for r in small_files["flags"].to_pylist() if "critique_disagrees" in r["flags"]}


def test_curate_all_writes_every_output_once_and_a_report_without_the_input(cli, tmp_path):
    path, bench, _ = dataset(tmp_path)
    out = tmp_path / "all"
    done = cli("curate", "all", path, "--out", out, "-b", bench, "--jsonl")
    assert done.returncode == 0, done.stderr
    names = {p.name for p in out.iterdir()}
    assert {"data.parquet", "data.jsonl", "pairs_overall.parquet", "flags.parquet", "removals.parquet",
            "clusters.parquet", "stats.json", "report.html", "config.json"} <= names
    stats = json.loads((out / "stats.json").read_text())
    assert stats["prompts_in"] == 60 and stats["prompts_kept"] == 56
    assert stats["removals"]["removed_by_source"] == 1 and stats["removals"]["removed_by_text"] == 1
    assert "--drop-source none" in stats["removals"]["source_rule"]
    assert stats["clusters"]["removed_by_reason"] == {"exact": 1, "near": 1}
    assert stats["audit"]["flag_counts"]["critique_disagrees"] >= 1
    assert stats["compare"]["strategies"] == {"a": "overall", "b": "mean"}
    pairs = pq.read_table(out / "data.parquet")
    assert pairs.num_rows == stats["binarize"]["mean"]["pairs"] and set(pairs.column("strategy").to_pylist()) == {"mean"}
    # the same pairs as the single command, which runs on the same engine
    single = tmp_path / "single"
    clean = tmp_path / "clean"
    assert cli("curate", "decontaminate", path, "--out", clean, "-b", bench).returncode == 0
    unique = tmp_path / "unique"
    assert cli("curate", "dedup", clean, "--out", unique).returncode == 0
    assert cli("curate", "binarize", unique, "--out", single).returncode == 0
    assert pq.read_table(single / "data.parquet").select(["prompt_id", "index_chosen", "index_rejected"]).equals(
        pairs.select(["prompt_id", "index_chosen", "index_rejected"]))
    # report.html comes back from stats.json alone: the input is gone
    before = (out / "report.html").read_text()
    path.unlink()
    (out / "report.html").unlink()
    again = cli("report", out)
    assert again.returncode == 0, again.stderr
    assert (out / "report.html").read_text() == before


def test_ids_survive_decontaminate_then_dedup_then_binarize(cli, tmp_path):
    path, bench, records = dataset(tmp_path)
    clean, unique, pairs = tmp_path / "clean", tmp_path / "unique", tmp_path / "pairs"
    assert cli("curate", "decontaminate", path, "--out", clean, "-b", bench).returncode == 0
    assert cli("curate", "dedup", clean, "--out", unique).returncode == 0
    done = cli("curate", "binarize", unique, "--out", pairs, "--strategy", "overall")
    assert done.returncode == 0, done.stderr
    kept = pq.read_table(unique / "data.parquet")
    assert kept.column("prompt_id").to_pylist() == [str(i) for i in range(60) if i not in (5, 9, 12, 31)]
    clusters = pq.read_table(unique / "clusters.parquet").to_pylist()
    for row in clusters:  # every cluster row names the original record, prompt text included
        assert row["prompt"] == records[int(row["prompt_id"])]["instruction"]
    assert {r["prompt_id"] for r in clusters if not r["kept"]} == {"12", "31"}
    for pair in pq.read_table(pairs / "data.parquet").to_pylist():
        original = records[int(pair["prompt_id"])]
        assert pair["prompt"][0]["content"] == original["instruction"]
        assert pair["chosen"][0]["content"] == original["completions"][pair["index_chosen"]]["response"]


def test_decontaminate_says_how_many_went_by_source_and_how_to_keep_them(cli, tmp_path):
    path, bench, _ = dataset(tmp_path)
    done = cli("curate", "decontaminate", path, "--out", tmp_path / "d", "-b", bench)
    assert done.returncode == 0 and "1 prompts removed because their source is truthful_qa" in done.stdout
    kept = cli("curate", "decontaminate", path, "--out", tmp_path / "k", "-b", bench, "--drop-source", "none")
    stats = json.loads((tmp_path / "k" / "stats.json").read_text())
    assert kept.returncode == 0 and stats["removed_by_source"] == 0 and stats["prompts_removed"] == 1
    assert "5" in pq.read_table(tmp_path / "k" / "data.parquet").column("prompt_id").to_pylist()


def test_critique_rule_on_the_command_line(cli, tmp_path):
    path, _, _ = dataset(tmp_path)
    counts = {}
    for rule in ("gap", "classic", "none"):
        done = cli("curate", "audit", path, "--out", tmp_path / rule, "--critique-rule", rule)
        assert done.returncode == 0, done.stderr
        counts[rule] = json.loads((tmp_path / rule / "stats.json").read_text())["flag_counts"]["critique_disagrees"]
    assert counts["gap"] >= counts["classic"] >= 1 and counts["none"] == 0
    bad = cli("curate", "audit", path, "--out", tmp_path / "bad", "--critique-rule", "loose")
    assert bad.returncode == 2 and "--critique-rule loose" in bad.stderr and "Traceback" not in bad.stderr


def test_report_shows_text_one_section_per_flag_and_informational_apart(cli, tmp_path):
    path, _, records = dataset(tmp_path)
    out = tmp_path / "audit"
    assert cli("curate", "audit", path, "--out", out).returncode == 0
    html = (out / "report.html").read_text()
    assert "Critique score contradicts the aspect ratings" in html
    assert "Informational: Aspect rated N/A" in html
    assert html.index("Critique score contradicts") < html.index("Informational: Aspect rated N/A")
    assert records[7]["instruction"] in html  # the prompt itself, not only its id
    assert "Critique of answer 2." in html and "Ratings per model" in html
    assert "[&quot;" not in html  # no escaped JSON lists


def chosen_edit(tmp_path) -> Path:
    """A review's edits log that marks completion 3 of prompt 0 chosen."""
    pytest.importorskip("notos.data.edits")
    edits = tmp_path / "edits.jsonl"
    entry = {"prompt_id": "0", "completion_index": 3, "field": "chosen", "old": None, "new": 3,
             "time": "2026-01-01T00:00:00.000+00:00", "note": None, "origin": "review"}
    edits.write_text(json.dumps(entry) + "\n")
    return edits


def test_edits_force_the_chosen_response(cli, tmp_path):
    path, _, _ = dataset(tmp_path)
    edits = chosen_edit(tmp_path)
    out = tmp_path / "pairs"
    done = cli("curate", "binarize", path, "--out", out, "--edits", edits)
    assert done.returncode == 0, done.stderr
    pair = next(p for p in pq.read_table(out / "data.parquet").to_pylist() if p["prompt_id"] == "0")
    assert pair["index_chosen"] == 3
    stats = json.loads((out / "stats.json").read_text())
    assert stats["edits_applied"]["chosen"] == 1 and stats["forced_prompts"] == 1


def test_compare_before_and_after_a_review(cli, tmp_path):
    path, _, _ = dataset(tmp_path)
    edits = chosen_edit(tmp_path)
    out = tmp_path / "cmp"
    done = cli("curate", "compare", path, "--out", out, "--edits", edits)
    assert done.returncode == 0, done.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["edits_applied"]["chosen"] == 1
    before = {p["prompt_id"]: p["index_chosen"] for p in pq.read_table(out / "pairs_before.parquet").to_pylist()}
    after = {p["prompt_id"]: p["index_chosen"] for p in pq.read_table(out / "pairs_after.parquet").to_pylist()}
    assert after["0"] == 3 and {k: v for k, v in after.items() if k != "0"} == {k: v for k, v in before.items() if k != "0"}
    changed = 1 if before["0"] != 3 else 0
    assert stats["n_chosen_differs"] == changed and stats["prompts_both"] == len(before)
