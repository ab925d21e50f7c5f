"""The edits log: append-only, locked, durable; a torn last line is skipped; apply_edits applies the
latest edit per (prompt, completion, field), counts what it applied and what matched nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from notos.data.completions import completions_from_rows
from notos.data.edits import (
    EditsLog,
    apply_edits,
    edit,
    edits_path,
    find_edits,
    read_edits,
    review_dir,
)
from notos.errors import DataError


def rows():
    out = []
    for pid in ("a", "b"):
        for k, ratings in enumerate(([5, 5, 5, 5], [2, 2, 2, 2], [3, 3, 3, 3])):
            out.append({"prompt_id": pid, "prompt": f"p {pid}", "completion_index": k, "response": f"r{k}",
                        **{f"rating_{a}": r for a, r in zip(("instruction_following", "honesty", "truthfulness",
                                                                "helpfulness"), ratings)}})
    return completions_from_rows(out)


def test_apply_edits_ratings_marks_discards_and_unmatched(tmp_path):
    log = EditsLog(tmp_path / "review")
    log.append([
        edit("a", "rating_honesty", 4, old=5, completion_index=0),
        edit("a", "rating_honesty", 1, old=4, completion_index=0),  # the latest of the same cell wins
        edit("a", "rating_truthfulness", None, old=2, completion_index=1),  # N/A
        edit("a", "chosen", 1, old=0, completion_index=1),
        edit("a", "chosen", 2, old=1, completion_index=2),  # a later mark replaces the earlier one
        edit("b", "discard", True, old=False),
        edit("a", "flag", "confirmed", completion_index=0),
        edit("a", "note", "the 10 is wrong"),
        edit("zzz", "rating_honesty", 3, completion_index=0),  # no such prompt
        edit("a", "rating_honesty", 3, completion_index=7),  # no such completion
    ])
    completions, forced, counts = apply_edits(rows(), log.path)
    table = completions.table.to_pylist()
    assert {r["prompt_id"] for r in table} == {"a"}  # b discarded: every row of it gone
    a0 = next(r for r in table if r["completion_index"] == 0)
    a1 = next(r for r in table if r["completion_index"] == 1)
    assert a0["rating_honesty"] == 1 and a0["na_honesty"] is False
    assert a1["rating_truthfulness"] is None and a1["na_truthfulness"] is True
    assert a1["rating_honesty"] == 2  # untouched cells stay
    assert forced == {"a": {"chosen": 2, "rejected": None}}
    assert counts == {"ratings": 2, "chosen": 1, "rejected": 0, "discards": 1, "flags_confirmed": 1,
                      "flags_overruled": 0, "notes": 1, "reviewed": 0, "unmatched": 2}
    # The original table is untouched: edits never rewrite the data.
    assert rows().table.column("rating_honesty").to_pylist()[0] == 5


def test_a_discard_undone_restores_the_prompt(tmp_path):
    log = EditsLog(tmp_path)
    log.append([edit("b", "discard", True), edit("b", "discard", False)])
    completions, _, counts = apply_edits(rows(), log.path)
    assert completions.num_prompts == 2 and counts["discards"] == 0


def test_bad_edits_are_one_line_errors():
    with pytest.raises(DataError, match="rating 1-5"):
        edit("a", "rating_honesty", 7, completion_index=0)
    with pytest.raises(DataError, match="needs a completion_index"):
        edit("a", "rating_honesty", 3)
    with pytest.raises(DataError, match="unknown field 'colour'"):
        edit("a", "colour", 3)
    with pytest.raises(DataError, match="no edits log"):
        edits_path("/nonexistent/review")


def test_where_the_log_lives(tmp_path):
    (tmp_path / "run").mkdir()
    assert review_dir(tmp_path / "run") == tmp_path / "run" / "review"
    assert review_dir(tmp_path / "uf.jsonl") == tmp_path / "uf.review"
    assert find_edits(tmp_path / "run") is None
    EditsLog(review_dir(tmp_path / "run")).append([edit("a", "reviewed", True)])
    assert find_edits(tmp_path / "run") == tmp_path / "run" / "review" / "edits.jsonl"
    assert edits_path(tmp_path / "run" / "review") == find_edits(tmp_path / "run")


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_clean(tmp_path):
    log = EditsLog(tmp_path)
    log.append([edit("a", "rating_honesty", 4, completion_index=0)])
    with open(log.path, "ab") as handle:  # what a kill in the middle of a write leaves
        handle.write(b'{"prompt_id": "a", "completion_index": 1, "fie')
    assert len(read_edits(log.path)) == 1
    log.append([edit("a", "rating_honesty", 2, completion_index=1)])
    entries = read_edits(log.path)
    assert [e["new"] for e in entries] == [4, 2]
    assert log.path.read_bytes().count(b"\n") == 3  # the torn line stays, ended, unread


WRITER = """
import sys
from notos.data.edits import EditsLog, edit
log = EditsLog(sys.argv[1])
for i in range(int(sys.argv[3])):
    log.append([edit(sys.argv[2], "note", f"note {i} " + "x" * 3000)])
"""


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    """Two writers (two tabs' requests, or two servers) interleave whole lines, never bytes."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name, "200"]) for name in ("tab1", "tab2")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    entries = read_edits(tmp_path / "edits.jsonl")
    assert len(entries) == 400
    assert sorted(e["new"].split()[1] for e in entries if e["prompt_id"] == "tab1") == sorted(str(i) for i in range(200))


def test_killing_a_writer_mid_stream_never_corrupts_earlier_lines(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "k", "100000"])
    path = tmp_path / "edits.jsonl"
    deadline = time.time() + 60
    while (not path.exists() or path.stat().st_size < 200_000) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    lines = path.read_bytes().split(b"\n")
    complete = [line for line in lines[:-1] if line]
    assert len(complete) >= 50
    for line in complete:  # every finished line parses; only the last one may be cut
        json.loads(line)
    assert len(read_edits(path)) == len(complete)
