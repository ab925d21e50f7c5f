"""`notos experiment binarization`: critique score or mean rating, one DPO model per rule, each
evaluated against the start and against the other; on a tiny setting with the embedded model."""

import json

import pyarrow.parquet as pq
import pytest

ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
TOPICS = ("tea", "rivers", "chess", "bread", "owls", "glass", "maps", "bees")


def records() -> list[dict]:
    """UltraFeedback records where the critique and the ratings disagree on every other prompt
    (the critique scores a curt answer 9 while its ratings say 2), Notus's case; one prompt has a
    completion with a missing rating, a broken label the audit's fixes drop."""
    out = []
    for i, topic in enumerate(TOPICS):
        answers = [f"{topic.capitalize()}. Fine.",
                   f"Here is a careful explanation of {topic}: where it comes from, what it is used for, and one surprising fact.",
                   f"I do not know anything about {topic}."]
        ratings = [[2, 2, 3, 2], [5, 5, 4, 5], [1, 3, 1, 1]]
        overall = [9.0, 6.0, 2.0] if i % 2 == 0 else [5.0, 8.0, 2.0]
        completions = []
        for k, (aspect_ratings, score) in enumerate(zip(ratings, overall)):
            annotations = {a: {"Rating": str(r), "Rationale": "As rated."} for a, r in zip(ASPECTS, aspect_ratings)}
            if i == 7 and k == 2:
                annotations["helpfulness"]["Rating"] = None
            completions.append({"model": f"m{k}", "response": answers[k], "annotations": annotations,
                                "critique": "Reviewed.", "overall_score": score})
        out.append({"instruction": f"Tell me about {topic}.", "source": "test", "models": [c["model"] for c in completions],
                    "completions": completions})
    return out


TINY = ("--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", "train.save_steps=1",
        "--eval-prompts", 2, "--max-new-tokens", 8, "--no-progress")


@pytest.mark.slow  # trains two models and judges them with the embedded model
def test_two_rules_each_trained_evaluated_and_compared(cli, tmp_path, llm_server):
    data = tmp_path / "uf.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records()))
    out = tmp_path / "exp"
    done = cli("experiment", "binarization", data, "--out", out, *TINY, timeout=1800)
    assert done.returncode == 0, done.stderr
    stages = {k: v["summary"] for k, v in json.loads((out / "stages.json").read_text())["stages"].items()}

    # The audit's fix: the completion with a missing rating is gone before either rule binarizes.
    assert stages["audit"]["dropped_as_broken"] == 1
    fixed = pq.read_table(out / "audit" / "fixed.parquet")
    assert fixed.num_rows == 23 and ("7", 2) not in set(zip(fixed.column("prompt_id").to_pylist(),
                                                              fixed.column("completion_index").to_pylist()))

    # The chosen-changed share agrees with the two pair files.
    critique = {p["prompt_id"]: p["index_chosen"] for p in pq.read_table(out / "pairs-critique" / "data.parquet").to_pylist()}
    mean = {p["prompt_id"]: p["index_chosen"] for p in pq.read_table(out / "pairs-mean" / "data.parquet").to_pylist()}
    share = stages["compare"]["pairs"]["critique vs mean"]
    both = set(critique) & set(mean)
    assert share["prompts_both"] == len(both) == 8
    assert share["n_chosen_differs"] == sum(critique[p] != mean[p] for p in both) == 4  # the disagreeing half

    # Each model trained from the same start with the same recipe; each evaluated.
    for rule in ("critique", "mean"):
        trained = json.loads((out / f"train-{rule}" / "notos-train.json").read_text())
        assert trained["steps"] == 2 and (out / f"train-{rule}" / "merged" / "config.json").exists()
        assert stages[f"train-{rule}"]["model"] == "embedded"
    assert stages["answers"]["arms"] == ["start", "critique", "mean"]
    for a, b in (("critique", "start"), ("mean", "start"), ("critique", "mean")):
        figures = json.loads((out / "judge" / f"{a}-vs-{b}" / "summary.json").read_text())
        assert figures["n_wins"] + figures["n_wins_base"] + figures["n_draws"] == figures["n_total"]
        assert figures["n_total"] + figures["n_missing"] == 2
        assert figures["model"] == a and figures["baseline"] == b
        assert stages[f"judge-{a}-vs-{b}"]["n_total"] == figures["n_total"]
    assert "mt-bench" not in stages  # no real judge: no MT-Bench grading

    page = (out / "report.html").read_text()
    assert "Mechanics check" in page and "Training curves" in page and "How often the rules choose differently" in page
    assert "too few prompts to tell" in done.stdout  # 2 prompts: no winner is named
    for link in ("audit/report.html", "pairs-critique/report.html", "train-mean/report.html", "judge/critique-vs-mean/report.html"):
        assert f'href="{link}"' in page

    again = cli("experiment", "binarization", data, "--out", out, *TINY, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(done earlier)") == len(stages)

    # Another judge (a server, as a strong judge would be): only the judging reruns, and
    # MT-Bench single grading joins; the pairs, the models and their answers are kept.
    judged = cli("experiment", "binarization", data, "--out", out, *TINY, "--judge", llm_server.base_url, timeout=900)
    assert judged.returncode == 0, judged.stderr
    kept = [line.split()[0] for line in judged.stdout.splitlines() if "(done earlier)" in line]
    assert kept == ["audit", "pairs-critique", "pairs-mean", "compare", "train-critique", "train-mean", "answers"]
    after = {k: v["summary"] for k, v in json.loads((out / "stages.json").read_text())["stages"].items()}
    assert after["judge-critique-vs-mean"]["judge"] == "fake-model"
    assert set(after["mt-bench"]["scores"]) == {"start", "critique", "mean"}
    assert all(v["overall"] is not None for v in after["mt-bench"]["scores"].values())
    assert "Mechanics check" not in (out / "report.html").read_text()
    assert "MT-Bench single grading" in (out / "report.html").read_text()


@pytest.mark.parametrize("args, words", [
    (["--rules", "critique"], ["--rules", "at least two"]),
    (["--rules", "critique,overall"], ["--rules", "at least two"]),
    (["--rules", "critique,median"], ["--rules", "median"]),
    (["--drop-flags", "bogus"], ["--drop-flags", "bogus"]),
    (["--set", "gen.max_new_tokens=3"], ["--set", "train.KEY=VALUE"]),
    (["--set", "train.no_such_key=3"], ["no_such_key"]),
    (["--recipe", "quickstart-sft"], ["quickstart-sft", "not a DPO recipe"]),
])
def test_bad_options_are_one_line_before_anything_runs(cli, tmp_path, args, words):
    data = tmp_path / "uf.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records()))
    done = cli("experiment", "binarization", data, "--out", tmp_path / "exp", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and all(w in done.stderr for w in words), done.stderr
    assert not (tmp_path / "exp").exists()


def test_missing_input_is_one_line(cli, tmp_path):
    done = cli("experiment", "binarization", tmp_path / "nowhere.jsonl", "--out", tmp_path / "exp")
    assert done.returncode == 2 and "nowhere.jsonl" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_audit_fix_drops_broken_labels_and_keeps_the_critique_disagreements(tmp_path):
    from notos.recipes.loop import audit_and_fix

    data = tmp_path / "uf.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records()))
    summary = audit_and_fix(data, tmp_path / "audit", ["missing_rating", "duplicate_response"])
    fixed = pq.read_table(tmp_path / "audit" / "fixed.parquet")
    assert summary["dropped_as_broken"] == 1 and summary["completions_kept"] == fixed.num_rows == 23
    assert summary["flag_counts"]["critique_disagrees"] >= 1  # reported...
    assert fixed.column("completion_index").to_pylist().count(0) == 8  # ...not dropped (the curt answers the critique loves)
    assert (tmp_path / "audit" / "report.html").exists()


@pytest.mark.parametrize("figures, expected", [
    ({"win_rate": 80.0, "standard_error": 8.0, "n_total": 40}, "Rule 'critique' trained the better model"),
    ({"win_rate": 20.0, "standard_error": 8.0, "n_total": 40}, "Rule 'mean' trained the better model"),
    ({"win_rate": 58.0, "standard_error": 8.0, "n_total": 40}, "within noise"),
    ({"win_rate": 50.0, "standard_error": 0.0, "n_total": 40}, "within noise"),
    ({"win_rate": 100.0, "standard_error": 0.0, "n_total": 40}, "Rule 'critique' trained the better model"),
    ({"win_rate": 100.0, "standard_error": 0.0, "n_total": 4}, "too few prompts"),
    ({"win_rate": None, "standard_error": None, "n_total": 0}, "no verdict"),
])
def test_the_verdict_names_a_winner_only_beyond_the_noise(figures, expected):
    from notos.recipes.experiment import verdicts

    (sentence,) = verdicts(["critique", "mean"], {"judge-critique-vs-mean": {**figures, "judge": "j"}}, "j")
    assert expected in sentence
