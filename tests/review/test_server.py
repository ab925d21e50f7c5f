"""`notos review` as a user starts it: a real process on 127.0.0.1, the token, 403s, edits over
HTTP, two writers at once, and no token on disk."""

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def start_review(data: Path, *extra, sigint_ignored: bool = False) -> tuple[subprocess.Popen, str]:
    # sigint_ignored: as a process started in the background of a script gets it
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    proc = subprocess.Popen([sys.executable, "-m", "notos.cli", "review", str(data), "--no-browser", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
    for line in proc.stdout:
        found = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        if found:
            return proc, found.group(1)
    raise AssertionError(f"no URL printed: {proc.stderr.read()}")


def stop(proc: subprocess.Popen, how=signal.SIGINT) -> str:
    proc.send_signal(how)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out + err


def request(url: str, body=None, headers=None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def served(review_data):
    proc, url = start_review(review_data, sigint_ignored=True)  # Ctrl-C still stops it
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_no_token_is_403_and_the_token_never_reaches_disk(served, review_data):
    proc, url = served
    base, token = url.split("/?token=")
    assert request(base + "/")[0] == 403
    assert request(base + "/api/records")[0] == 403
    assert request(base + "/api/records?token=wrong")[0] == 403
    assert request(base + "/api/meta", headers={"X-Notos-Token": token[:-1]})[0] == 403
    status, page = request(url)
    assert status == 200 and b"<title>notos review</title>" in page
    assert b"cdn" not in page.lower() and b"<script src" not in page  # self-contained, works offline
    status, body = request(f"{base}/api/records?token={token}&sort=chosen&desc=1&flag=any")
    assert status == 200 and [r["prompt_id"] for r in json.loads(body)["rows"]] == ["f2", "f1", "f3"]
    status, body = request(f"{base}/api/edit?token={token}", {"prompt_id": "f2", "completion_index": 1,
                                                               "field": "rating_honesty", "new": 2})
    assert status == 200 and json.loads(body)["summary"]["edits"] == 1
    status, body = request(f"{base}/api/edit?token={token}", {"prompt_id": "f2", "field": "rating_honesty", "new": 2})
    assert status == 400 and "completion_index" in json.loads(body)["error"]
    assert request(f"{base}/nothing?token={token}")[0] == 404
    output = stop(proc)
    review = review_data.parent / "uf.review"
    log = (review / "access.log").read_text()
    assert "GET /api/records 200" in log and "GET / 403" in log
    for file in review_data.parent.rglob("*"):
        if file.is_file():
            assert token not in file.read_text(errors="replace"), file
    assert "1 edits in" in output


def test_two_tabs_editing_at_once_lose_no_edit(served, review_data):
    proc, url = served
    base, token = url.split("/?token=")
    errors = []

    def tab(name: str):
        for i in range(25):
            status, _ = request(f"{base}/api/edit", {"prompt_id": "f1", "field": "note", "new": f"{name} {i}"},
                                headers={"X-Notos-Token": token})
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=tab, args=(name,)) for name in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stop(proc, signal.SIGTERM)  # as a service manager stops it
    lines = (review_data.parent / "uf.review" / "edits.jsonl").read_text().splitlines()
    notes = sorted(json.loads(line)["new"] for line in lines)
    assert notes == sorted(f"{n} {i}" for n in ("left", "right") for i in range(25))


def test_bad_input_is_one_line(cli, tmp_path):
    run_notos = cli
    result = run_notos("review", tmp_path / "missing.jsonl", "--no-browser")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "missing.jsonl" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no preference data"}\n')
    result = run_notos("review", bad, "--no-browser")
    assert result.returncode == 2 and "not a known preference-data shape" in result.stderr
    result = run_notos("review", bad, "--no-browser", "--strategy", "all-pairs")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
