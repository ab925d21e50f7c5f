"""`notos eval winrate` judging pairs against the loopback server.

The fake pairwise judge prefers the answer holding the higher `[d]` digit (equal: `[[C]]`, a tie)
and, with `[pos]` in the question, always answers `[[A]]`: a judge that follows position. The
fake model answers "Answer to: <instruction>", so a generated answer carries its instruction's
digit. Every preference below is therefore known before the run.
"""

import json

import pytest

from notos.evaluate.judged_winrate import run_judged

# (instruction, model answer, baseline answer, expected preference: 2 model, 1 baseline, 1.5 tie)
PAIRS = [("Name a colour", "Red [7]", "Blue [3]", 2.0),
         ("Name a fruit", "Apple [2]", "Pear [5]", 1.0),
         ("Name a tree", "Oak [4]", "Elm [4]", 1.5),
         ("Name a river", "Nile [9]", "Rhine [1]", 2.0),
         ("Name a city", "Rome [6]", "Oslo [5]", 2.0)]


def write(path, rows):
    path.write_text(json.dumps(rows))
    return path


def outputs(tmp_path, name, column, generator, pairs=PAIRS):
    rows = [{"instruction": p[0], "output": p[column], "generator": generator} for p in pairs]
    return write(tmp_path / f"{name}.json", rows[::-1])  # another order than the instructions: matched by text


def test_cli_judges_both_orders_and_writes_the_folder(cli, llm_server, tmp_path):
    model, base = outputs(tmp_path, "ours", 1, "our-model"), outputs(tmp_path, "theirs", 2, "their-model")
    instructions = write(tmp_path / "instructions.json", [{"instruction": p[0]} for p in PAIRS])
    out = tmp_path / "wr"
    result = cli("eval", "winrate", "--instructions", instructions, "--model-outputs", model, "--baseline", base,
                 "--judge", llm_server.base_url, "--out", out, "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    annotations = json.loads((out / "annotations.json").read_text())
    assert [a["instruction"] for a in annotations] == [p[0] for p in PAIRS]
    assert [a["preference"] for a in annotations] == [p[3] for p in PAIRS]
    assert annotations[0]["output_1"] == "Blue [3]" and annotations[0]["output_2"] == "Red [7]"
    assert {a["generator_1"] for a in annotations} == {"their-model"} and {a["generator_2"] for a in annotations} == {"our-model"}
    assert all(a["consistent"] for a in annotations)  # this judge is fair: both orders agree
    # 3 wins, 1 loss, 1 tie: (3 + 0 + .5) / 5
    assert figures["win_rate"] == pytest.approx(70.0)
    assert (figures["n_wins"], figures["n_wins_base"], figures["n_draws"], figures["n_total"]) == (3, 1, 1, 5)
    assert figures["model"] == "our-model" and figures["baseline"] == "their-model" and figures["judge"] == "fake-model"
    assert json.loads((out / "summary.json").read_text()) == figures
    config = json.loads((out / "config.json").read_text())
    assert config["both_orders"] is True and config["model"] == {"file": str(model)} and config["n_instructions"] == 5
    assert "data:image/png;base64," in (out / "report.html").read_text()
    judged = [b for b in llm_server.requests if "[[A]], [[B]] or [[C]]" in b["messages"][-1]["content"]]
    assert len(judged) == 10  # every pair, in both orders
    first = judged[0]["messages"][-1]["content"]
    assert first.index("Blue [3]") < first.index("Red [7]")  # order 1 shows the baseline as A


def test_position_bias_cancels_into_ties(cli, llm_server, tmp_path):
    pairs = [(f"Pick one [pos] {i}", f"mine {i} [{i}]", f"theirs {i} [{9 - i}]", None) for i in range(4)]
    model, base = outputs(tmp_path, "ours", 1, "m", pairs), outputs(tmp_path, "theirs", 2, "b", pairs)
    both = cli("eval", "winrate", "--model-outputs", model, "--baseline", base, "--judge", llm_server.base_url,
               "--out", tmp_path / "both", "--json")
    assert both.returncode == 0, both.stderr
    figures = json.loads(both.stdout)
    assert figures["win_rate"] == pytest.approx(50.0) and figures["n_draws"] == 4 and figures["n_inconsistent"] == 4
    # Asked once, the same judge hands every pair to whoever is shown first: the baseline.
    one = cli("eval", "winrate", "--model-outputs", model, "--baseline", base, "--judge", llm_server.base_url,
              "--out", tmp_path / "one", "--json", "--one-order")
    assert one.returncode == 0, one.stderr
    figures = json.loads(one.stdout)
    assert figures["win_rate"] == pytest.approx(0.0) and figures["n_wins_base"] == 4 and figures["both_orders"] is False


def test_model_spec_generates_its_answers(cli, llm_server, tmp_path):
    # The fake model answers "Answer to: <instruction>": the instruction's digit decides.
    instructions = [("Describe a cat [8]", "A cat [5]"), ("Describe a dog [2]", "A dog [5]"), ("Describe a cow [5]", "A cow [5]")]
    base = write(tmp_path / "base.json", [{"instruction": q, "output": a, "generator": "ref"} for q, a in instructions])
    out = tmp_path / "gen"
    result = cli("eval", "winrate", "--model", llm_server.base_url, "--baseline", base, "--judge", llm_server.base_url,
                 "--out", out, "--limit", 2, "--max-new-tokens", 16)
    assert result.returncode == 0, result.stderr
    generated = json.loads((out / "model_outputs.json").read_text())
    assert generated == [{"instruction": q, "output": f"Answer to: {q}", "generator": "fake-model"} for q, _ in instructions[:2]]
    annotations = json.loads((out / "annotations.json").read_text())
    assert [a["preference"] for a in annotations] == [2.0, 1.0]  # --limit 2: the cow is not judged
    summary = json.loads((out / "summary.json").read_text())
    assert summary["win_rate"] == pytest.approx(50.0) and summary["model"] == "fake-model"
    assert "fake-model vs ref" in result.stdout and "50.00" in result.stdout
    asked = [b for b in llm_server.requests if b.get("max_tokens") == 16]
    assert len(asked) == 2  # answers use --max-new-tokens; the judge its own budget


def spec(server, name):
    return {"backend": "openai", "base_url": server.base_url, "model": name, "max_retries": 0}


def test_failed_requests_and_missing_outputs_get_no_verdict(llm_server, tmp_path):
    rows = [("Q1", "a [6]", "c [2]"), ("Q2 [400]", "b [6]", "d [2]"), ("Q3", "", "e [2]")]
    model = write(tmp_path / "ours.json", [{"instruction": q, "output": m, "generator": "g"} for q, m, _ in rows])
    base = write(tmp_path / "theirs.json", [{"instruction": q, "output": b, "generator": "g"} for q, _, b in rows])
    figures = run_judged(tmp_path / "wr", baseline=str(base), judge=spec(llm_server, "j"), model_outputs=model,
                         model_name="ours", baseline_name="theirs", progress=False)
    annotations = json.loads((tmp_path / "wr" / "annotations.json").read_text())
    assert [a["preference"] for a in annotations] == [2.0, None, None]
    assert annotations[1]["judge_errors"][0].startswith("request failed")
    assert annotations[2]["judge_errors"] == ["no output to judge", "no output to judge"]
    assert figures["win_rate"] == pytest.approx(100.0) and figures["n_total"] == 1 and figures["n_missing"] == 2
    assert figures["n_judge_requests_failed"] == 2 and figures["n_verdicts_unreadable"] == 0
    assert (figures["model"], figures["baseline"], figures["judge"]) == ("ours", "theirs", "j")
    assert len(llm_server.requests) == 4  # Q3 costs no request


def test_rerun_asks_nothing_again_and_retries_what_failed(llm_server, tmp_path):
    # The first request with each text gets HTTP 500: the model's answer to the flaky instruction on
    # the first run, then both of its verdicts (their prompts hold the instruction) on the second.
    base = write(tmp_path / "base.json", [{"instruction": "Describe a cat [8]", "output": "A cat [5]", "generator": "ref"},
                                          {"instruction": "Flaky [500x1] dog [2]", "output": "A dog [5]", "generator": "ref"}])
    out = tmp_path / "wr"

    def judged(**options):
        return run_judged(out, baseline=str(base), judge=spec(llm_server, "j"), model=spec(llm_server, "m"),
                          progress=False, **options)

    first = judged()
    assert len(llm_server.requests) == 4  # 2 answers (1 failed), 2 verdicts
    assert (first["n_total"], first["n_missing"], first["win_rate"]) == (1, 1, pytest.approx(100.0))
    generated = json.loads((out / "model_outputs.json").read_text())
    assert generated[1]["output"] == "" and "500" in generated[1]["error"]
    assert (out / "run" / "manifest.json").exists()  # the engine's run store

    second = judged()  # the failed answer is asked again; its verdicts now fail in turn
    assert len(llm_server.requests) == 7
    assert (second["n_total"], second["n_missing"], second["n_judge_requests_failed"]) == (1, 1, 2)
    third = judged()
    assert len(llm_server.requests) == 9
    assert (third["n_total"], third["n_missing"], third["n_judge_requests_failed"]) == (2, 0, 0)
    assert third["win_rate"] == pytest.approx(50.0)  # cat: 8 beats 5; dog: 2 loses to 5
    annotations = (out / "annotations.json").read_text()

    again = judged()  # nothing left to do: nothing is asked, the same figures and files
    assert len(llm_server.requests) == 9 and again == third
    assert (out / "annotations.json").read_text() == annotations
    # Another verdict budget asks the judge again, and only the judge.
    judged(judge_max_new_tokens=64)
    new = llm_server.requests[9:]
    assert len(new) == 4 and all(b["max_tokens"] == 64 for b in new)
