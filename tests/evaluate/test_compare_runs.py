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
