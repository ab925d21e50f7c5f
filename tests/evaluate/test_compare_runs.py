"""`notos eval compare`: two evaluation folders with known figures, side by side."""

import json

import pytest

from notos.errors import NotosError
from notos.evaluate.compare_runs import compare_runs, flatten, plot_groups

ZEPHYR_MT = {"kind": "mt-bench", "model": "zephyr-7b-beta", "judge": "gpt-4", "overall": 7.34, "turn_1": 7.6, "turn_2": 7.08,
             "per_category": {"writing": 8.9, "math": 4.2, "coding": 3.9},
             "per_category_turn": {"writing": {"turn_1": 9.0, "turn_2": 8.8}},
             "n_questions": 80, "n_failed_to_parse": 2, "finished": True}
NOTUS_MT = {"kind": "mt-bench", "model": "notus-7b-v1", "judge": "gpt-4", "overall": 7.3, "turn_1": 7.55, "turn_2": None,
            "per_category": {"writing": 9.1, "math": 4.0, "coding": 4.4, "stem": 8.0},
            "per_category_turn": {"writing": {"turn_1": 9.2, "turn_2": 9.0}},
            "n_questions": 80, "n_failed_to_parse": 0}
ZEPHYR_WR = {"win_rate": 90.6, "standard_error": 1.03, "length_controlled_win_rate": 13.2, "n_total": 805}
NOTUS_WR = {"win_rate": 91.42, "standard_error": 0.98, "n_total": 805, "avg_length": 2196}


def make(folder, summary):
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_flatten_keeps_numbers_only():
    assert flatten({"a": 1, "b": {"c": 2.5, "d": "text", "e": [1]}, "f": True, "g": None, "h": float("nan")}) == {"a": 1, "b.c": 2.5}


def test_mt_bench_runs_differences(tmp_path):
    a, b = make(tmp_path / "zephyr", ZEPHYR_MT), make(tmp_path / "notus", NOTUS_MT)
    result = compare_runs(a, b)
    assert result["a"]["label"] == "zephyr-7b-beta" and result["b"]["label"] == "notus-7b-v1"
    rows = {r["figure"]: (r["a"], r["b"], r["diff"]) for r in result["figures"]}
    assert list(rows) == ["overall", "turn_1", "per_category.writing", "per_category.math", "per_category.coding",
                          "per_category_turn.writing.turn_1", "per_category_turn.writing.turn_2",
                          "n_questions", "n_failed_to_parse"]
    assert rows["overall"] == pytest.approx((7.34, 7.3, -0.04))
    assert rows["turn_1"] == pytest.approx((7.6, 7.55, -0.05))
    assert rows["per_category.writing"] == pytest.approx((8.9, 9.1, 0.2))
    assert rows["per_category.coding"] == pytest.approx((3.9, 4.4, 0.5))
    assert rows["per_category_turn.writing.turn_2"] == pytest.approx((8.8, 9.0, 0.2))
    assert rows["n_failed_to_parse"] == (2, 0, -2)
    assert result["only_in_a"] == ["turn_2"] and result["only_in_b"] == ["per_category.stem"]
    groups = dict(plot_groups(result))
    assert groups == {"MT-Bench (1-10)": ["overall", "turn_1"],
                      "per_category": ["per_category.writing", "per_category.math", "per_category.coding"]}


def test_winrate_runs_and_folders_of_runs(tmp_path):
    # A folder of evaluation folders: figures are named after the sub-folder.
    make(tmp_path / "zephyr" / "mt-bench", ZEPHYR_MT)
    make(tmp_path / "zephyr" / "winrate", ZEPHYR_WR)
    make(tmp_path / "notus" / "winrate", NOTUS_WR)
    result = compare_runs(tmp_path / "zephyr", tmp_path / "notus")
    rows = {r["figure"]: (r["a"], r["b"], r["diff"]) for r in result["figures"]}
    assert list(rows) == ["winrate/win_rate", "winrate/standard_error", "winrate/n_total"]
    assert rows["winrate/win_rate"] == pytest.approx((90.6, 91.42, 0.82))
    assert rows["winrate/standard_error"] == pytest.approx((1.03, 0.98, -0.05))
    assert rows["winrate/n_total"] == (805, 805, 0)
    assert "winrate/length_controlled_win_rate" in result["only_in_a"] and "mt-bench/overall" in result["only_in_a"]
    assert result["only_in_b"] == ["winrate/avg_length"]
    assert result["a"]["kinds"] == ["mt-bench", "winrate"]
    assert result["a"]["label"] == "zephyr-7b-beta" and result["b"]["label"] == "notus"  # no model name: the folder's
    assert dict(plot_groups(result)) == {"Win rate": ["winrate/win_rate"]}


def test_runs_with_nothing_in_common_or_no_summary_are_errors(tmp_path):
    mt, wr = make(tmp_path / "mt", {"overall": 7.0}), make(tmp_path / "wr", {"win_rate": 50.0})
    with pytest.raises(NotosError, match="no figure in common"):
        compare_runs(mt, wr)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotosError, match="empty: no summary.json"):
        compare_runs(mt, tmp_path / "empty")


def test_cli_table_json_and_report(cli, tmp_path):
    a, b = make(tmp_path / "zephyr", ZEPHYR_MT), make(tmp_path / "notus", NOTUS_MT)
    shown = cli("eval", "compare", a, b)
    assert shown.returncode == 0, shown.stderr
    line = next(row for row in shown.stdout.splitlines() if "per_category.coding" in row)
    assert [cell.strip() for cell in line.split("│")[2:5]] == ["3.9", "4.4", "+0.5"]
    assert "only in zephyr-7b-beta: turn_2" in shown.stdout

    out = tmp_path / "cmp"
    as_json = cli("eval", "compare", a, b, "--json", "--out", out)
    assert as_json.returncode == 0, as_json.stderr
    printed = json.loads(as_json.stdout)
    assert printed == json.loads((out / "compare.json").read_text())
    assert {r["figure"]: r["diff"] for r in printed["figures"]}["overall"] == pytest.approx(-0.04)
    report = (out / "report.html").read_text()
    assert report.count("<img") == 2 and "per_category" in report and "notus-7b-v1" in report


def test_cli_errors_name_the_folder(cli, tmp_path):
    a = make(tmp_path / "a", ZEPHYR_MT)
    (tmp_path / "bare").mkdir()
    for other, message in ((tmp_path / "bare", "bare: no summary.json"), (tmp_path / "nowhere", "nowhere: no such folder")):
        done = cli("eval", "compare", a, other)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and message in done.stderr and str(other) in done.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{nope")
    done = cli("eval", "compare", a, tmp_path / "broken")
    assert done.returncode == 2 and "broken/summary.json: cannot read it as JSON" in done.stderr


# --- honesty: the set-up must match, and every difference carries its SE and n ----------------

def winrate_folder(folder, judge, baseline, instructions, wins):
    annotations = [{"instruction": text, "output_1": "b", "generator_1": baseline, "output_2": "m", "generator_2": "model",
                    "preference": 2.0 if win else 1.0} for text, win in zip(instructions, wins)]
    n, rate = len(wins), sum(wins) / len(wins)
    se = (sum((w - rate) ** 2 for w in wins) / (n - 1)) ** 0.5 / n ** 0.5
    make(folder, {"kind": "winrate", "model": folder.name, "baseline": baseline, "judge": judge,
                  "win_rate": 100 * rate, "standard_error": 100 * se, "n_total": n})
    (folder / "annotations.json").write_text(json.dumps(annotations))
    return folder


QUESTIONS = [f"question {i}" for i in range(8)]


def test_runs_judged_differently_are_refused_unless_asked(tmp_path, cli):
    a = winrate_folder(tmp_path / "a", "gpt-4", "davinci", QUESTIONS, [1, 1, 1, 0, 1, 1, 1, 1])
    b = winrate_folder(tmp_path / "b", "SmolLM2", "SmolLM2", QUESTIONS[:4], [0, 0, 1, 0])
    with pytest.raises(NotosError) as refused:
        compare_runs(a, b)
    message = str(refused.value)
    assert "judge gpt-4 vs SmolLM2" in message and "baseline davinci vs SmolLM2" in message
    assert "question set 8 questions #" in message and "vs 4 questions #" in message and "--allow-mismatch" in message
    done = cli("eval", "compare", a, b)
    assert done.returncode == 2 and "not evaluated alike" in done.stderr and done.stderr.count("\n") == 1
    shown = cli("eval", "compare", a, b, "--allow-mismatch")
    assert shown.returncode == 0, shown.stderr
    assert "not evaluated alike: judge gpt-4 vs SmolLM2" in " ".join(shown.stdout.split())
    result = compare_runs(a, b, allow_mismatch=True)
    assert len(result["caveats"]) == 3


def test_every_difference_shows_its_standard_error_and_n(tmp_path, cli):
    a = winrate_folder(tmp_path / "a", "gpt-4", "davinci", QUESTIONS, [1, 0, 1, 0, 1, 0, 1, 0])
    b = winrate_folder(tmp_path / "b", "gpt-4", "davinci", QUESTIONS, [1, 1, 1, 0, 1, 1, 1, 0])
    result = compare_runs(a, b)
    row = next(r for r in result["figures"] if r["figure"] == "win_rate")
    se_a, se_b = 100 * (0.25 * 8 / 7) ** 0.5 / 8 ** 0.5, 100 * (3 / 16 * 8 / 7) ** 0.5 / 8 ** 0.5
    assert row["diff"] == pytest.approx(25.0) and row["se"] == pytest.approx((se_a ** 2 + se_b ** 2) ** 0.5)
    assert (row["n_a"], row["n_b"]) == (8, 8) and row["within_noise"] is True  # 25 points on 8 questions: noise
    shown = cli("eval", "compare", a, b)
    line = next(r for r in shown.stdout.splitlines() if r.startswith("│ win_rate"))
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[3] == "~+25" and cells[4] == f"{row['se']:.4g}" and cells[5] == "8 / 8"
    assert "under 2 standard errors" in shown.stdout


def test_mt_bench_standard_errors_come_from_the_judgments(tmp_path):
    def mt(folder, scores):
        make(folder, {"kind": "mt-bench", "model": folder.name, "judge": "gpt-4", "overall": sum(scores) / len(scores)})
        (folder / "model_judgment.jsonl").write_text("".join(
            json.dumps({"question_id": 81 + i // 2, "turn": 1 + i % 2, "category": "writing", "score": s}) + "\n"
            for i, s in enumerate(scores)) + json.dumps({"question_id": 99, "turn": 1, "category": "math", "score": -1}) + "\n")
        (folder / "model_answer.jsonl").write_text("".join(json.dumps({"question_id": q}) + "\n" for q in (81, 82, 99)))
        return folder

    result = compare_runs(mt(tmp_path / "a", [8, 6, 7, 9]), mt(tmp_path / "b", [2, 4, 3, 3]))
    row = next(r for r in result["figures"] if r["figure"] == "overall")
    assert (row["n_a"], row["n_b"]) == (4, 4)  # the unreadable verdict (-1) is not a score
    sd_a, sd_b = (5 / 3) ** 0.5, (2 / 3) ** 0.5
    assert row["se"] == pytest.approx(((sd_a ** 2 + sd_b ** 2) / 4) ** 0.5) and row["within_noise"] is False
    moved = mt(tmp_path / "c", [8, 6, 7, 9])
    (moved / "model_answer.jsonl").write_text(json.dumps({"question_id": 81}) + "\n")
    with pytest.raises(NotosError, match="question set 3 questions #.* vs 1 questions #"):
        compare_runs(tmp_path / "a", moved)
