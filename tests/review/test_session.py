"""The review session on hand-built data: list sort and filters, the record view, edits that change
the chosen response, and binarize with a person's edits."""

import pyarrow.parquet as pq

from notos.data.edits import read_edits
from notos.data.records import read_completions
from notos.review.marks import binarize_with_edits
from notos.review.session import open_session


def ids(page):
    return [r["prompt_id"] for r in page["rows"]]


def test_sort_and_filter_the_list(review_data):
    s = open_session(review_data)
    assert s.meta()["prompts"] == 13 and s.meta()["aspects"][0] == "instruction_following"
    everything = s.page(sort="chosen", descending=True)
    assert everything["total"] == 13 and ids(everything)[:3] == ["u0", "u1", "u2"]  # 5.0 first, data order on ties
    flagged = s.page(sort="chosen", descending=True, flag="any")
    assert ids(flagged) == ["f2", "f1", "f3"]  # chosen 4.75, 4.0, 3.0
    assert ids(s.page(sort="chosen", flag="any")) == ["f3", "f1", "f2"]
    assert ids(s.page(sort="severity", descending=True))[:3] == ["f1", "f2", "f3"]  # same severity: data order
    assert ids(s.page(source="flan")) == ["f1", "f3"]
    assert ids(s.page(flag="critique_disagrees", source="flan")) == ["f1", "f3"]
    assert ids(s.page(aspect="honesty", low=4.5, high=5)) == ["f2"] + [f"u{i}" for i in range(10)]
    assert ids(s.page(q="item F2")) == ["f2"]  # case-insensitive, prompts
    assert ids(s.page(q="more words")) == ["f1", "f2", "f3"] + [f"u{i}" for i in range(10)]  # responses
    assert s.page(model="model-2")["total"] == 3
    assert s.page(edited="yes")["total"] == 0
    page = s.page(size=10, page=1)
    assert page["total"] == 13 and len(page["rows"]) == 3


def test_record_view_and_edits_change_the_chosen_response(review_data):
    s = open_session(review_data)
    r = s.record("f2")
    assert [c["index"] for c in r["completions"]] == [0, 1, 2]
    assert (r["chosen"], r["machine"]["chosen"]) == (1, 1)
    assert [c["principle"] for c in r["completions"]] == ["helpfulness", "honesty", "truthfulness"]
    c0 = r["completions"][0]
    assert c0["flags"][0]["flag"] == "critique_disagrees" and "critique 10.0" in c0["flags"][0]["reason"]
    assert c0["ratings"][1] == {"aspect": "honesty", "rating": 1.0, "na": False, "original": 1.0, "edited": False,
                                "rationale": "The text is about the topic."}
    r = s.edit({"prompt_id": "f2", "completion_index": 1, "field": "rating_honesty", "new": 1})
    assert r["completions"][1]["ratings"][1]["rating"] == 1 and r["completions"][1]["ratings"][1]["original"] == 5
    assert r["chosen"] == 1  # mean 3.75 still beats 3.0
    r = s.edit({"prompt_id": "f2", "completion_index": 2, "field": "chosen", "new": 2})
    assert r["chosen"] == 2 and r["machine"]["chosen"] == 1 and r["rejected"] in (0, 1)
    s.edit({"prompt_id": "f2", "completion_index": 0, "field": "flag", "new": "confirmed"})
    s.edit({"prompt_id": "f1", "completion_index": 0, "field": "flag", "new": "overruled"})
    s.edit({"prompt_id": "f3", "field": "discard", "new": True})
    summary = s.summary()
    assert summary == {"records": 13, "reviewed": 3, "edited": 1, "discarded": 1, "flags_confirmed": 1,
                       "flags_overruled": 1, "edits": 5, "flag_precision": 0.5}
    assert ids(s.page(edited="yes")) == ["f1", "f2", "f3"]
    assert s.page(sort="chosen", descending=True, flag="any")["rows"][0]["chosen_score"] == 4.0  # f1; f2's chosen is now 3.0
    log = read_edits(s.log.path)
    assert [(e["field"], e["old"], e["new"]) for e in log[:2]] == [("rating_honesty", 5.0, 1), ("chosen", 1, 2)]
    # A new session over the same data finds the log and shows the same state.
    again = open_session(review_data)
    assert again.record("f2")["chosen"] == 2 and again.summary() == summary


def test_binarize_with_edits(review_data, tmp_path):
    s = open_session(review_data)
    s.edit({"prompt_id": "f2", "completion_index": 2, "field": "chosen", "new": 2})
    s.edit({"prompt_id": "f3", "field": "discard", "new": True})
    s.edit({"prompt_id": "f1", "completion_index": 1, "field": "rating_helpfulness", "new": 1})
    completions = read_completions(review_data)
    pairs, counts = binarize_with_edits(completions, s.log.path)
    by_id = {r["prompt_id"]: r for r in pairs.to_pylist()}
    assert "f3" not in by_id and len(by_id) == 12
    assert by_id["f2"]["index_chosen"] == 2 and by_id["f2"]["strategy"] == "human"
    assert by_id["f2"]["chosen"][0]["content"] == "Answer 2 to f2. More words. More words."
    assert by_id["f1"]["score_chosen"] == 3.25  # (4 + 4 + 4 + 1) / 4: the edited rating counts
    assert counts["chosen"] == 1 and counts["discards"] == 1 and counts["ratings"] == 1
    pq.write_table(pairs, tmp_path / "pairs.parquet")  # the pairs keep binarize's schema and stats
    assert b"forced" in pq.read_schema(tmp_path / "pairs.parquet").metadata[b"notos.binarize"]


def test_the_cache_is_reused_and_rebuilt_when_the_data_changes(review_data, monkeypatch):
    from notos.review import cache

    monkeypatch.setattr(cache, "IN_PROCESS_BYTES", 0)  # read in a child process, as at full size
    first = open_session(review_data)
    folder = first.log.folder / "cache"
    assert (folder / "key.json").is_file() and (folder / "completions.arrow").is_file()
    stamp = (folder / "completions.arrow").stat().st_mtime_ns
    again = open_session(review_data)
    assert (folder / "completions.arrow").stat().st_mtime_ns == stamp  # mapped, not rebuilt
    assert again.page(sort="chosen", descending=True, flag="any")["rows"][0]["prompt_id"] == "f2"
    lines = review_data.read_text().splitlines()
    review_data.write_text("\n".join(lines[1:]) + "\n")  # f1 gone
    changed = open_session(review_data)
    assert changed.meta()["prompts"] == 12 and "f1" not in changed.index.position
    review_data.write_text("not json\n")
    import pytest

    from notos.errors import DataError

    with pytest.raises(DataError, match="uf.jsonl"):
        open_session(review_data)


def test_review_reads_curate_outputs_and_trl_pairs(cli, review_data, tmp_path):
    assert cli("curate", "audit", review_data, "--out", tmp_path / "audit").returncode == 0
    audited = open_session(tmp_path / "audit")  # flags are not completions: its input is read
    assert audited.meta()["prompts"] == 13 and audited.log.folder == tmp_path / "audit" / "review"
    assert cli("curate", "binarize", review_data, "--out", tmp_path / "pairs", "--strategy", "overall").returncode == 0
    binarized = open_session(tmp_path / "pairs")
    assert binarized.meta()["strategy"] == "overall"  # chosen means what that output chose
    assert binarized.record("f2")["chosen"] == 0  # the critique's 10
    pairs = open_session(tmp_path / "pairs" / "data.parquet")  # the pairs file alone: two completions each
    record = pairs.record("f2")
    assert [c["index"] for c in record["completions"]] == [0, 1] and record["chosen"] == 0
    assert record["completions"][0]["response"] == "Answer 0 to f2."
