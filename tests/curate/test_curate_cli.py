"""`notos curate ...` and `notos report` through the CLI, as a user runs them."""

import json

import datasets
import pyarrow.parquet as pq


def uf_record(i, ratings, overall, source="sharegpt"):
    """An UltraFeedback record with one completion per entry of `ratings` (4 aspect ratings each)."""
    completions = []
    for k, (aspects, score) in enumerate(zip(ratings, overall)):
        annotations = {}
        for name, rating in zip(("instruction_following", "honesty", "truthfulness", "helpfulness"), aspects):
            annotations[name] = {"Rating": str(rating), "Rationale": "Fine."}
        completions.append({"model": f"m{k}", "response": f"answer {k} to prompt {i}" + " more" * k,
                            "annotations": annotations, "critique": "ok", "overall_score": score})
    return {"instruction": f"Prompt number {i}: describe item {i}.", "source": source, "models": [c["model"] for c in completions],
            "completions": completions}


def write_records(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def dataset(tmp_path):
    records = [
        # critique picks completion 0 (10), the aspect mean picks completion 1 (Notus's disagreement)
        uf_record(0, [[1, 1, 2, 1], [5, 5, 5, 5], [3, 3, 3, 3]], [10, 7, 5]),
        # both agree on completion 2
        uf_record(1, [[2, 2, 2, 2], [3, 3, 3, 3], [5, 5, 4, 5]], [3, 6, 9], source="flan"),
        # all tied on the mean: no mean pair
        uf_record(2, [[3, 3, 3, 3], [3, 3, 3, 3]], [5, 8], source="flan"),
    ]
    return write_records(tmp_path / "uf.jsonl", records)


def test_binarize_writes_trl_pairs_in_every_format(cli, tmp_path):
    source = dataset(tmp_path)
    out = tmp_path / "pairs"
    done = cli("curate", "binarize", source, "--out", out, "--strategy", "mean", "--jsonl", "--save-datasets")
    assert done.returncode == 0, done.stderr
    pairs = {r["prompt_id"]: r for r in pq.read_table(out / "data.parquet").to_pylist()}
    assert set(pairs) == {"0", "1"}  # prompt 2 is all tied
    assert pairs["0"]["chosen"] == [{"role": "assistant", "content": "answer 1 to prompt 0 more"}]
    assert pairs["0"]["prompt"] == [{"role": "user", "content": "Prompt number 0: describe item 0."}]
    assert pairs["0"]["score_chosen"] == 5.0 and pairs["0"]["score_rejected"] < 5.0
    assert pairs["1"]["index_chosen"] == 2 and pairs["1"]["strategy"] == "mean"
    assert len((out / "data.jsonl").read_text().splitlines()) == 2
    assert len(datasets.load_from_disk(str(out / "dataset"))) == 2
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pairs"] == 2 and stats["dropped"]["all_tied"] == 1
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "binarize" and config["options"]["strategy"] == "mean"
    html = (out / "report.html").read_text()
    assert "Length of chosen vs rejected" in html and "<svg" in html and "<polygon" in html


def test_compare_finds_the_notus_disagreement(cli, tmp_path):
    out = tmp_path / "cmp"
    done = cli("curate", "compare", dataset(tmp_path), "--out", out, "--jsonl")
    assert done.returncode == 0, done.stderr
    stats = json.loads((out / "stats.json").read_text())
    # Prompts paired by both: 0 and 1; only prompt 0's chosen differs.
    assert stats["n"] == 2 and stats["n_chosen_differs"] == 1 and stats["chosen_differs"] == 0.5
    assert (out / "pairs_overall.parquet").exists() and (out / "pairs_mean.parquet").exists()


def test_audit_puts_the_critique_contradiction_first(cli, tmp_path):
    out = tmp_path / "audit"
    done = cli("curate", "audit", dataset(tmp_path), "--out", out)
    assert done.returncode == 0, done.stderr
    worst = pq.read_table(out / "data.parquet").to_pylist()[0]
    assert (worst["prompt_id"], worst["completion_index"]) == ("0", 0)
    assert "critique_disagrees" in worst["flags"] and "critique 10.0 vs aspect mean 1.25" in worst["reasons"][0]
    assert "Critique score vs aspect ratings" in (out / "report.html").read_text()


def test_decontaminate_keeps_the_input_shape_and_chains(cli, tmp_path, shared_data):
    question = json.loads((shared_data / "mt_bench" / "question.jsonl").read_text().splitlines()[0])
    records = [uf_record(0, [[5, 5, 5, 5], [1, 1, 1, 1]], [9, 2]), uf_record(1, [[4, 4, 4, 4], [2, 2, 2, 2]], [8, 3]),
               uf_record(2, [[4, 4, 4, 4], [2, 2, 2, 2]], [8, 3], source="truthful_qa")]
    records[1]["instruction"] = "Please help: " + question["turns"][0]
    source = write_records(tmp_path / "uf.jsonl", records)
    out = tmp_path / "clean"
    done = cli("curate", "decontaminate", source, "--out", out, "--benchmark", shared_data / "mt_bench" / "question.jsonl")
    assert done.returncode == 0, done.stderr
    kept = pq.read_table(out / "data.parquet")
    assert kept.column("instruction").to_pylist() == [records[0]["instruction"]]
    assert set(kept.column_names) >= {"instruction", "completions", "source"}  # the input's own shape
    removals = {r["prompt_id"]: r for r in pq.read_table(out / "removals.parquet").to_pylist()}
    assert removals["1"]["reason"] == "ngram" and removals["1"]["benchmark_id"] == f"mt_bench:{question['question_id']}:turn1"
    assert removals["2"]["reason"] == "source"
    chained = cli("curate", "binarize", out / "data.parquet", "--out", tmp_path / "pairs", "--strategy", "overall")
    assert chained.returncode == 0, chained.stderr
    assert pq.read_table(tmp_path / "pairs" / "data.parquet").num_rows == 1


def test_report_rebuilds_and_refuses_other_folders(cli, tmp_path):
    out = tmp_path / "pairs"
    assert cli("curate", "binarize", dataset(tmp_path), "--out", out).returncode == 0
    (out / "report.html").unlink()
    again = cli("report", out)
    assert again.returncode == 0 and (out / "report.html").exists()
    other = tmp_path / "other"
    other.mkdir()
    refused = cli("report", other)
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0 and "not an output folder" in refused.stderr


def test_bad_input_is_one_line_and_nothing_is_lost(cli, tmp_path):
    source = dataset(tmp_path)
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    cases = [
        (("curate", "binarize", tmp_path / "nope.jsonl", "--out", tmp_path / "o1"), "no such file"),
        (("curate", "binarize", source, "--out", tmp_path / "o2", "--strategy", "median"), "strategy"),
        (("curate", "binarize", source, "--out", keep), "not an output of notos curate"),
        (("curate", "compare", source, "--out", tmp_path / "o3", "--a", "mean", "--b", "mean"), "--a and --b"),
        (("curate", "decontaminate", source, "--out", tmp_path / "o4", "--benchmark", tmp_path / "missing.jsonl"), "missing.jsonl"),
    ]
    for args, message in cases:
        done = cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert (keep / "notes.txt").read_text() == "precious" and sorted(p.name for p in keep.iterdir()) == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder left behind
    bad = tmp_path / "bad.jsonl"
    record = uf_record(9, [[6, 1, 1, 1], [1, 1, 1, 1]], [5, 5])
    write_records(bad, [record])
    done = cli("curate", "binarize", bad, "--out", tmp_path / "o5")
    assert done.returncode == 2 and "instruction_following" in done.stderr and "6" in done.stderr


def test_an_output_folder_chains_as_its_data_and_a_cut_swap_is_recovered(cli, tmp_path):
    out = tmp_path / "deduped"
    assert cli("curate", "dedup", dataset(tmp_path), "--out", out).returncode == 0
    assert (out / "clusters.parquet").exists()  # beside data.parquet, and not data
    by_folder, by_file = tmp_path / "p1", tmp_path / "p2"
    assert cli("curate", "binarize", out, "--out", by_folder, "--strategy", "mean").returncode == 0
    assert cli("curate", "binarize", out / "data.parquet", "--out", by_file, "--strategy", "mean").returncode == 0
    assert pq.read_table(by_folder / "data.parquet").equals(pq.read_table(by_file / "data.parquet"))
    # Killed between the two renames of the swap: the old output waits aside as .p1.old. The next
    # command puts it back before checking --out, then replaces it.
    by_folder.rename(tmp_path / ".p1.old")
    done = cli("curate", "binarize", out, "--out", by_folder, "--strategy", "overall")
    assert done.returncode == 0, done.stderr
    assert json.loads((by_folder / "config.json").read_text())["options"]["strategy"] == "overall"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
