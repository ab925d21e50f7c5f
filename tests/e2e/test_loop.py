"""`notos quickstart`: the whole loop (AI feedback -> audit -> decontaminate -> binarize -> DPO ->
before/after win rate -> one report) on the embedded model, through the CLI."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from notos.curate.decontaminate import decontaminate
from notos.data.completions import completions_from_rows
from notos.data.io import read_rows
from notos.recipes.loop import MT_BENCH, drop_partial_checkpoints, run_stage
from notos.shipped import RECIPE_DATA

PROMPTS = RECIPE_DATA / "quickstart_prompts.jsonl"
STAGES = ("generate", "audit", "decontaminate", "binarize", "dpo", "eval")
# Small enough for the suite, big enough that every stage has something to do.
SMALL = ("--prompts", 8, "--max-new-tokens", 12, "--steps", 4, "--eval-prompts", 3, "--set", "train.save_steps=2",
         "--no-progress")


def stages_of(out: Path) -> dict:
    return json.loads((out / "stages.json").read_text())["stages"]


@pytest.mark.slow  # the embedded model generates, rates, trains and judges
def test_the_loop_end_to_end_resumes_after_a_kill_in_training_and_reruns_in_seconds(cli, tmp_path):
    out = tmp_path / "qs"
    # First run, in a process of its own: killed once training has written its first checkpoint
    # (trainer_state.json is its last file).
    command = [sys.executable, "-m", "notos.cli", "quickstart", "--out", str(out), *map(str, SMALL)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 900
        while not (out / "dpo" / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file():
            assert process.poll() is None, f"the loop ended before training checkpointed:\n{process.stdout.read()}"
            assert time.monotonic() < deadline, "no checkpoint within 15 minutes"
            time.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(60)
    killed = stages_of(out)
    assert killed["dpo"]["done"] is False and not (out / "dpo" / "notos-train.json").exists()

    second = cli("quickstart", "--out", out, *SMALL)
    assert second.returncode == 0, second.stderr
    lines = {line.split()[0]: line for line in second.stdout.splitlines() if line and line.split()[0] in STAGES}
    assert set(lines) == set(STAGES)  # one line per stage
    assert all("(done earlier)" in lines[s] for s in ("generate", "audit", "decontaminate", "binarize"))
    stages = stages_of(out)
    assert all(stages[s]["done"] for s in STAGES)
    assert stages["dpo"]["summary"]["resumed_from"] == "checkpoint-2"  # training picked up where it was killed
    assert stages["dpo"]["summary"]["steps"] == 4

    # The planted contaminated prompt (a near copy of MT-Bench question 81) is caught and reported.
    removals = pq.read_table(out / "decontaminate" / "removals.parquet").to_pylist()
    assert [r["prompt_id"] for r in removals] == ["qs-22"] and ":81:" in removals[0]["benchmark_id"]
    assert "qs-22" in lines["decontaminate"] and "1 of 8 prompts removed" in lines["decontaminate"]
    pairs = pq.read_table(out / "binarize" / "data.parquet").to_pylist()
    assert pairs and "qs-22" not in {p["prompt_id"] for p in pairs}
    assert all(p["score_chosen"] > p["score_rejected"] for p in pairs)  # Notus's rule: strictly better mean rating

    # DPO raised the chosen-over-rejected margin on its own pairs (0 before: the reference is the start model).
    dpo = stages["dpo"]["summary"]
    assert dpo["margin_after"] > 0 and dpo["accuracy_after"] > 0.5
    assert (out / "dpo" / "merged" / "config.json").exists()

    # The before/after win rate: counts add up, both orders judged, the caveat printed.
    figures = json.loads((out / "eval" / "winrate" / "summary.json").read_text())
    assert figures["n_wins"] + figures["n_wins_base"] + figures["n_draws"] == figures["n_total"]
    assert figures["n_total"] + figures["n_missing"] == 3 and figures["both_orders"] is True
    annotations = json.loads((out / "eval" / "winrate" / "annotations.json").read_text())
    assert len(annotations) == 3 and all(len(a["judge_raw"]) == 2 for a in annotations)
    assert {a["generator_2"] for a in annotations} == {"after DPO"}
    assert "verdicts show the mechanics, not quality" in second.stdout

    # One page links every stage's own report.
    page = (out / "report.html").read_text()
    for link in ("audit/report.html", "decontaminate/report.html", "binarize/report.html", "dpo/report.html",
                 "eval/winrate/report.html"):
        assert f'href="{link}"' in page and (out / link).exists()
    assert "qs-22" in page

    began = time.monotonic()
    third = cli("quickstart", "--out", out, *SMALL)
    assert third.returncode == 0, third.stderr
    assert time.monotonic() - began < 30
    assert sum("(done earlier)" in line for line in third.stdout.splitlines()) == len(STAGES)
    assert stages_of(out) == stages


def test_the_planted_prompt_is_the_one_the_shipped_mt_bench_catches():
    rows = read_rows(str(PROMPTS))
    completions = completions_from_rows(
        [{"prompt_id": r["id"], "prompt": r["instruction"], "completion_index": 0, "response": "x"} for r in rows], aspects=[])
    _, removed = decontaminate(completions, [MT_BENCH])
    assert removed.column("prompt_id").to_pylist() == ["qs-22"]
    assert [r["id"] for r in rows].index("qs-22") < 8  # inside --prompts 8


def test_the_shipped_mt_bench_copy_is_fastchats_file(shared_data):
    assert MT_BENCH.read_bytes() == (shared_data / "mt_bench" / "question.jsonl").read_bytes()
    assert len(MT_BENCH.read_text().splitlines()) == 80


def test_a_stage_is_skipped_when_unchanged_resumed_when_cut_short_and_redone_when_changed(tmp_path, capsys):
    state = {"tool": "t", "stages": {}}
    calls = []
    folder = tmp_path / "second"

    def second_work():
        calls.append("second")
        folder.mkdir(exist_ok=True)
        (folder / "checkpoint").write_text("progress")
        if calls.count("second") == 1:
            raise KeyboardInterrupt  # cut short, as a kill would
        return {"n": 2}

    def stage(name, value, work):
        return run_stage(tmp_path, state, name, {"v": value}, work, lambda s: f"n={s['n']}", folder=folder if name == "second" else None)

    def first_work():
        calls.append("first")
        return {"n": 1}

    stage("first", 1, first_work)
    with pytest.raises(KeyboardInterrupt):
        stage("second", 2, second_work)
    assert state["stages"]["second"]["done"] is False
    stage("first", 1, first_work), stage("second", 2, second_work)
    assert calls == ["first", "second", "second"]  # first skipped; second resumed on its own folder
    assert (folder / "checkpoint").exists()
    stage("first", 1, first_work), stage("second", 2, second_work)
    assert calls == ["first", "second", "second"]  # nothing changed: both skipped
    (folder / "stale").write_text("from the old inputs")
    stage("first", 5, first_work), stage("second", 2, second_work)
    assert calls[-2:] == ["first", "second"]  # an earlier stage changed: the later one is redone...
    assert not (folder / "stale").exists()  # ...on a cleared folder
    assert "(done earlier)" in capsys.readouterr().out


def test_a_checkpoint_cut_short_by_a_kill_is_dropped_before_resuming(tmp_path):
    for name, files in (("checkpoint-2", ["model.safetensors", "trainer_state.json"]), ("checkpoint-4", ["model.safetensors"])):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
        for file in files:
            (tmp_path / "checkpoints" / name / file).write_text("x")
    assert drop_partial_checkpoints(tmp_path) == ["checkpoint-4"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["checkpoint-2"]
    assert drop_partial_checkpoints(tmp_path / "nothing-yet") == []


@pytest.mark.parametrize("args, words", [
    (["--input", "nowhere.jsonl"], ["--input", "nowhere.jsonl"]),
    (["--set", "train.no_such_key=1"], ["no_such_key"]),
])
def test_bad_quickstart_input_is_one_line(cli, tmp_path, args, words):
    done = cli("quickstart", "--out", tmp_path / "o", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and all(w in done.stderr for w in words), done.stderr


def test_quickstart_refuses_a_folder_it_did_not_write(cli, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    done = cli("quickstart", "--out", tmp_path / "notes")
    assert done.returncode == 2 and "not an output of notos quickstart" in done.stderr
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
