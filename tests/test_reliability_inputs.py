"""Bad input to `notos train` and `notos curate` (issue 13, items 6 and 7): exit 2, one line on
stderr naming the culprit, no traceback, no model loaded, and nothing already there changed.

Every case runs through `notos.cli.main` in this process (the `cli` fixture). The model loaders
and the trainers are replaced by functions that fail the test: a check that fires after them is
a check that fires too late.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from notos.shipped import RECIPE_DATA

PAIRS = RECIPE_DATA / "quickstart_pairs.jsonl"
CONVERSATIONS = RECIPE_DATA / "quickstart_sft.jsonl"
PAIR = {"prompt": "What is 2 + 2?", "chosen": "4.", "rejected": "5."}


def snapshot(folder: Path) -> dict:
    """Every file under the folder with its bytes (and every folder), to show nothing changed."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def one_line_error(done, *culprits: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])
    return lines[0]


# --- notos train ------------------------------------------------------------------------------

@pytest.fixture
def no_model(monkeypatch):
    """Loading a model, or starting a trainer, fails the test."""
    from notos.train import models, run

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded (or a trainer started) before the input was checked")

    for name in ("embedded_model_dir", "load_model", "load_tokenizer", "resolve_model"):
        monkeypatch.setattr(models, name, loaded)
    monkeypatch.setattr(run, "runner", loaded)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _files(tmp: Path) -> None:
    """The files the train cases name."""
    write_jsonl(tmp / "pairs.jsonl", [PAIR, PAIR])
    write_jsonl(tmp / "no_rejected.jsonl", [{"prompt": "hi", "chosen": "hello"}])
    write_jsonl(tmp / "no_messages.jsonl", [{"text": "hi"}])
    (tmp / "empty.jsonl").write_bytes(b"")
    (tmp / "blank.jsonl").write_bytes(b"\n  \n")
    pq.write_table(pa.table({"prompt": pa.array([], pa.string()), "chosen": pa.array([], pa.string()),
                             "rejected": pa.array([], pa.string())}), tmp / "empty.parquet")
    (tmp / "latin1.jsonl").write_bytes(json.dumps(PAIR).encode() + b'\n{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n')
    (tmp / "notes").mkdir()
    (tmp / "notes" / "mine.txt").write_text("my own notes\n")
    (tmp / "a_file").write_text("not a folder\n")
    (tmp / "staged.yaml").write_text(
        "description: two stages, the second one's data lacks 'rejected'\n"
        "stages:\n"
        f"  - {{name: first, kind: sft, data: {CONVERSATIONS}}}\n"
        f"  - {{name: second, kind: dpo, data: {tmp / 'no_rejected.jsonl'}}}\n")
    (tmp / "staged_no_data.yaml").write_text(
        f"stages:\n  - {{name: first, kind: sft, data: {CONVERSATIONS}}}\n  - {{name: second, kind: dpo}}\n")


TRAIN_CASES = {
    # id: (args after `notos train`, what the error line must name)
    "out-unrelated-folder": (["dpo", "--recipe", "quickstart-dpo", "--out", "notes"], ["--out", "notes", "not an output of notos train"]),
    "out-is-a-file": (["dpo", "--recipe", "quickstart-dpo", "--out", "a_file"], ["--out", "a_file"]),
    "out-under-a-file": (["rm", "--recipe", "quickstart-rm", "--out", "a_file/run"], ["--out", "a_file"]),
    "data-missing": (["dpo", "--recipe", "quickstart-dpo", "--data", "nowhere.jsonl", "--out", "o"], ["--data", "nowhere.jsonl"]),
    "data-no-rejected": (["dpo", "--recipe", "quickstart-dpo", "--data", "no_rejected.jsonl", "--out", "o"],
                         ["--data", "no_rejected.jsonl", "'rejected'"]),
    "rm-data-no-rejected": (["rm", "--recipe", "quickstart-rm", "--data", "no_rejected.jsonl", "--out", "o"], ["--data", "'rejected'"]),
    "sft-data-no-messages": (["sft", "--recipe", "quickstart-sft", "--data", "no_messages.jsonl", "--out", "o"],
                             ["--data", "no_messages.jsonl", "'messages'"]),
    "data-empty-file": (["dpo", "--recipe", "quickstart-dpo", "--data", "empty.jsonl", "--out", "o"], ["--data", "empty.jsonl"]),
    "data-blank-lines": (["dpo", "--recipe", "quickstart-dpo", "--data", "blank.jsonl", "--out", "o"], ["--data", "blank.jsonl", "no rows"]),
    "data-empty-parquet": (["dpo", "--recipe", "quickstart-dpo", "--data", "empty.parquet", "--out", "o"], ["--data", "empty.parquet", "no rows"]),
    "data-not-utf8": (["dpo", "--recipe", "quickstart-dpo", "--data", "latin1.jsonl", "--out", "o"], ["--data", "latin1.jsonl", "line 2", "UTF-8"]),
    "eval-data-no-rejected": (["dpo", "--recipe", "quickstart-dpo", "--data", "pairs.jsonl", "--set", "eval_data=no_rejected.jsonl",
                               "--out", "o"], ["eval_data", "no_rejected.jsonl", "'rejected'"]),
    "staged-second-stage-data": (["stages", "--recipe", "staged.yaml", "--out", "o"], ["stage 'second'", "data", "'rejected'"]),
    "no-data": (["dpo", "--recipe", "notus-dpo", "--out", "o"], ["--data"]),
    "staged-stage-without-data": (["stages", "--recipe", "staged_no_data.yaml", "--out", "o"], ["stage 'second'", "--set second.data="]),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES), ids=list(TRAIN_CASES))
def test_train_bad_input_is_one_line_before_any_model(case, cli, tmp_path, no_model):
    args, culprits = TRAIN_CASES[case]
    _files(tmp_path)
    before = snapshot(tmp_path)
    done = cli("train", *args, cwd=tmp_path)
    one_line_error(done, *culprits)
    assert snapshot(tmp_path) == before  # no output folder begun, nothing overwritten


def test_train_out_not_writable(cli, tmp_path, no_model, monkeypatch):
    """A read-only --out (or its parent): one line naming --out, not an internal error."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked and mode & os.W_OK
                        else real_access(path, mode, **kw))
    for out in (locked, locked / "run"):
        one_line_error(cli("train", "dpo", "--recipe", "quickstart-dpo", "--out", out), "--out", str(locked), "not writable")
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into a read-only folder")
def test_train_out_read_only_folder(cli, tmp_path, no_model):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        one_line_error(cli("train", "dpo", "--recipe", "quickstart-dpo", "--out", locked / "run"), "--out", "not writable")
    finally:
        locked.chmod(0o755)


def test_train_accepts_its_own_earlier_output(tmp_path):
    """Rerunning on a folder notos train began (config.yaml), finished (its marker) or a staged
    run began (recipe.yaml with stages) resumes it: the output check lets it through."""
    from notos.train.outputs import check_out, is_train_output

    begun, finished, staged, other = (tmp_path / n for n in ("begun", "finished", "staged", "other"))
    for folder in (begun, finished, staged, other):
        folder.mkdir()
    (begun / "config.yaml").write_text("kind: dpo\nresolved_model: /models/m\n")
    (begun / "checkpoints").mkdir()
    (finished / "notos-train.json").write_text('{"kind": "dpo", "steps": 1}')
    (staged / "recipe.yaml").write_text("stages:\n  - {name: a, kind: sft}\n")
    (other / "config.yaml").write_text("something: else\n")
    for folder in (begun, finished, staged, tmp_path / "new", tmp_path / "new" / "deeper"):
        check_out(folder)
    assert not is_train_output(other)
    empty = tmp_path / "empty"
    empty.mkdir()
    check_out(empty)


# --- notos curate: the JSON readers check UTF-8 -------------------------------------------------

GENERIC = [
    {"prompt": "What is a cat, in two words?", "responses": ["A pet.", "A small feline animal."],
     "scores": {"helpfulness": [2, 5]}, "source": "s"},
    {"prompt": "Name a dog breed, please now.", "responses": ["Beagle.", "A collie dog."],
     "scores": {"helpfulness": [4, 3]}, "source": "s"},
]
BAD_BYTE_AT = "a small feline"  # in the first record's second response


def _bad_jsonl(path: Path) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in GENERIC)
    path.write_bytes(text.encode().replace(b"A small feline", b"A small \xfffeline"))
    return path


def _bad_json(path: Path) -> Path:
    text = json.dumps(GENERIC, indent=1)  # the bad byte lands on a later line
    raw = text.encode().replace(b"A small feline", b"A small \xfffeline")
    path.write_bytes(raw)
    return path


CURATE_COMMANDS = {
    "audit": [],
    "decontaminate": ["--benchmark", "bench.jsonl"],
    "dedup": [],
    "binarize": [],
    "compare": ["--a", "mean", "--b", "best-worst"],
}


@pytest.mark.parametrize("suffix", ["jsonl", "json"])
@pytest.mark.parametrize("command", list(CURATE_COMMANDS))
def test_curate_input_not_utf8_names_file_and_line(command, suffix, cli, tmp_path):
    write_jsonl(tmp_path / "bench.jsonl", [{"prompt": "Unrelated benchmark question about the weather today?"}])
    bad = (_bad_jsonl if suffix == "jsonl" else _bad_json)(tmp_path / f"records.{suffix}")
    line = 1 + bad.read_bytes()[: bad.read_bytes().index(b"\xff")].count(b"\n")
    assert line == 1 if suffix == "jsonl" else line > 1
    before = snapshot(tmp_path)
    done = cli("curate", command, bad, "--out", tmp_path / "out", *CURATE_COMMANDS[command], cwd=tmp_path)
    one_line_error(done, str(bad), f"line {line}", "UTF-8")
    assert snapshot(tmp_path) == before  # no output folder, no work folder left


def test_curate_good_input_still_reads(cli, tmp_path):
    """The check passes clean files (a byte-order mark and non-ASCII text included)."""
    rows = [dict(r, prompt=r["prompt"] + " café — 猫") for r in GENERIC]
    good = tmp_path / "records.jsonl"
    good.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    array = tmp_path / "records.json"
    array.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    for path in (good, array):
        done = cli("curate", "binarize", path, "--out", tmp_path / f"out_{path.suffix[1:]}")
        assert done.returncode == 0, done.stderr
