"""A first (cold) start: the list is served from the keys alone while the texts and the audit
come in on a thread; what needs them waits, says so, and ends up as a start that waited for
everything (and as the data read whole, the way the review read it before it streamed)."""

import json
import threading
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pytest
from pyarrow import ipc
from review_helpers import review_records, write_parquet

from notos.curate.audit import audit
from notos.data.completions import Completions
from notos.errors import DataError
from notos.review import loading, server
from notos.review import session as session_module
from notos.review.load import load_source
from notos.review.session import open_session

QUERIES = [{"sort": "position"}, {"sort": "chosen", "descending": True}, {"sort": "severity", "descending": True},
           {"sort": "disagreement", "descending": True}, {"sort": "length"}, {"sort": "critique", "flag": "any"},
           {"flag": "critique_disagrees", "source": "flan"}, {"q": "more words"}, {"aspect": "honesty", "low": 4.5}]


@pytest.fixture
def parquet_data(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "TEXT_BATCH_ROWS", 3)  # 13 records in row groups of 4: four batches,
    monkeypatch.setattr(loading, "AUDIT_ROWS", 16)  # audited two batches at a time
    folder = tmp_path / "data"
    folder.mkdir()
    return write_parquet(folder / "uf.parquet", review_records())


def ids(page):
    return [r["prompt_id"] for r in page["rows"]]


def answers(s):
    """Every list query, and every record, as the API gives them."""
    pages = [{k: v for k, v in s.page(**q).items() if k not in s.pending()} for q in QUERIES]
    return pages, [s.record(pid) for pid in s.index.id_list]


def test_the_list_is_served_while_the_audit_runs_then_equals_a_waiting_start(parquet_data, gate, tmp_path):
    s = open_session(parquet_data, tmp_path / "cold", wait=False)
    assert s.meta()["audit_pending"] and s.meta()["texts_pending"]  # Parquet records: texts stream later too
    page = s.page(sort="chosen", descending=True)
    assert page["audit_pending"] and ids(page)[:3] == ["u0", "u1", "u2"]
    assert all(r["severity"] is None and r["flagged"] is None for r in page["rows"])  # not 0: unknown yet
    assert page["rows"][0]["prompt"] == "Question u0: explain item u0."
    waiting = {}
    flagged = threading.Thread(target=lambda: waiting.update(page=s.page(sort="chosen", descending=True, flag="any")))
    flagged.start()
    time.sleep(0.3)
    assert flagged.is_alive()  # a flag filter waits for the audit: never an answer from no flags
    gate.set()
    flagged.join(30)
    assert ids(waiting["page"]) == ["f2", "f1", "f3"] and not waiting["page"]["audit_pending"]
    rows = s.page()["rows"]  # f1 f2 f3 u0 ...: now with the audit's figures
    assert (rows[0]["severity"], rows[0]["flagged"], rows[3]["severity"], rows[3]["flagged"]) == (3.9375, 1, 0.0, 0)
    assert not s.meta()["texts_pending"]
    waited = open_session(parquet_data, tmp_path / "waited")  # wait=True: everything in before it returns
    assert answers(s) == answers(waited)
    assert s.record("f2")["completions"][0]["flags"][0]["flag"] == "critique_disagrees"


def test_streamed_texts_and_flags_equal_the_data_read_whole(parquet_data, tmp_path):
    s = open_session(parquet_data, tmp_path / "review")
    whole = load_source(parquet_data).completions  # the reader the review used before it streamed
    assert s.completions.table.equals(whole.table) and "principle" in s.completions.table.column_names
    assert s.completions.table.column("prompt_id").num_chunks == 4  # it came a row group (4 records) at a time
    assert s.index.flag_info and s.index.audited
    cache = tmp_path / "review" / "cache"
    assert (cache / "key.json").is_file()
    again = open_session(parquet_data, tmp_path / "review")  # a warm start maps what the cold one wrote
    assert again.completions.table.equals(whole.table)
    flags = audit(Completions(whole.table, whole.aspects))[0]
    assert ipc.open_file(pa.memory_map(str(cache / "flags.arrow"))).read_all().equals(flags)
    assert answers(again) == answers(s)


def test_a_failed_background_read_is_said_by_what_needs_it(parquet_data, monkeypatch, tmp_path, capsys):
    def broken(table):
        raise DataError("uf.parquet: row 9 cannot be read")

    monkeypatch.setattr(loading, "flags_of", broken)
    s = open_session(parquet_data, tmp_path / "review", wait=False)
    assert s.audit_ready.wait(30)
    page = s.page()
    assert page["total"] == 13 and "row 9" in page["load_error"]  # the list from the keys still answers
    with pytest.raises(DataError, match="reading the data failed: uf.parquet: row 9"):
        s.record("f1")
    assert "row 9 cannot be read" in capsys.readouterr().err
    assert not (tmp_path / "review" / "cache" / "key.json").exists()  # no half cache taken as whole


def test_a_jsonl_first_start_has_its_texts_and_audits_in_the_background(review_data, gate):
    s = open_session(review_data, wait=False)
    assert s.meta()["audit_pending"] and not s.meta()["texts_pending"]  # read whole: texts at once
    assert ids(s.page(q="item F2")) == ["f2"]
    gate.set()
    assert ids(s.page(sort="chosen", descending=True, flag="any")) == ["f2", "f1", "f3"]


def get(url, token):
    request = urllib.request.Request(url, headers={"X-Notos-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_api_and_page_say_the_audit_is_pending(parquet_data, gate, monkeypatch, tmp_path):
    monkeypatch.setattr(session_module, "WAIT_S", 0.2)
    s = open_session(parquet_data, tmp_path / "review", wait=False)
    running = server.start(s)
    base = f"http://127.0.0.1:{running.port}"
    try:
        status, body = get(f"{base}/api/meta", running.token)
        assert status == 200 and json.loads(body)["audit_pending"] is True
        status, body = get(f"{base}/api/records?sort=chosen&desc=1", running.token)
        assert status == 200 and json.loads(body)["audit_pending"] is True and json.loads(body)["total"] == 13
        status, body = get(f"{base}/api/records?sort=severity&desc=1", running.token)
        assert status == 503 and "the audit is still running" in json.loads(body)["error"]
        status, body = get(f"{base}/api/record?id=f1", running.token)
        assert status == 503 and "still being read" in json.loads(body)["error"]
        status, page = get(f"{base}/?token={running.token}", running.token)
        assert b'id="notice"' in page and b"audit flags are still being computed" in page
        gate.set()
        assert s.audit_ready.wait(30)
        status, body = get(f"{base}/api/records?sort=severity&desc=1", running.token)
        answer = json.loads(body)
        assert status == 200 and answer["audit_pending"] is False and ids(answer)[:3] == ["f1", "f2", "f3"]
    finally:
        running.stop()
