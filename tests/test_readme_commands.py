"""Every command of the README runs (issue 18): its bash and Python blocks, in order, in one
scratch folder, as a user would type them, on the embedded model, with a loopback server
standing in for remote LLMs (`openai:gpt-4o`, `http://127.0.0.1:8000/v1`).

A block under `<!-- not run by the tests: REASON -->` is skipped (installs, a GPU, the Hub, the
test run itself). A block whose first line is `# file: NAME` is written to NAME instead of run.
The files the README names as the user's own data (uf.parquet, question.jsonl, ...) are made
here from the package's data, the shared data and the curation bench's generator."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"(<!-- not run by the tests: [^>]*-->\n)?[ ]*```(bash|python|yaml)\n(.*?)```", re.S)
REMOTE = re.compile(r"openai:gpt-[\w.\-]+|http://127\.0\.0\.1:8000/v1")


def blocks() -> list[tuple[str, str, str | None]]:
    """(language, text, why it is skipped or None) of every fenced block, in README order."""
    found = []
    for skip, language, text in FENCE.findall((ROOT / "README.md").read_text()):
        text = "\n".join(line[2:] if line.startswith("  ") else line for line in text.splitlines())  # list-indented
        found.append((language, text, skip.strip() or None))
    return found


def commands(text: str) -> list[str]:
    """The shell lines of a bash block: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.split(" # ")[0].strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


BLOCKS = blocks()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    shared_data = ROOT.parent / "shared" / "data"
    if not shared_data.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{shared_data} is absent")
        pytest.skip(f"{shared_data} is absent (the README's evaluation examples use it)")
    folder = tmp_path_factory.mktemp("readme")
    (folder / "src").symlink_to(ROOT / "src")
    subprocess.run([sys.executable, str(ROOT / "bench" / "curate_data.py"), "--n", "120", "--out", str(folder / "uf.parquet")],
                   check=True, capture_output=True)
    shutil.copy(ROOT / "src/notos/recipes/data/mt_bench_questions.jsonl", folder / "question.jsonl")
    (folder / "reference_answer").mkdir()
    shutil.copy(shared_data / "mt_bench" / "reference_answer_gpt-4.jsonl", folder / "reference_answer" / "gpt-4.jsonl")
    alpaca = shared_data / "alpaca_eval"
    shutil.copy(alpaca / "notus-7b-v1_vs_text_davinci_003_annotations.json", folder / "annotations.json")
    shutil.copy(alpaca / "notus-7b-v1_outputs.json", folder / "alpaca_eval.json")
    shutil.copy(alpaca / "notus-7b-v1_outputs.json", folder / "outputs.json")
    with FakeLLMServer(models=["m1", "m2", "m3"]) as server:
        yield folder, server


def run_command(line: str, folder: Path, server) -> None:
    line = REMOTE.sub(server.base_url, line)
    argv = line.split()
    assert argv[0] == "notos", f"a README command that is not notos: {line!r} (mark its block as not run, and why)"
    env = {**os.environ, "PYTHONPATH": str(folder)}
    if argv[1] == "review":  # a server: it must answer its page, then it is stopped
        return check_review(argv, folder, env)
    done = subprocess.run([sys.executable, "-m", "notos.cli", *argv[1:]], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"


def check_review(argv: list[str], folder: Path, env: dict) -> None:
    process = subprocess.Popen([sys.executable, "-m", "notos.cli", *argv[1:]], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, deadline = None, time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            found = re.search(r"http://127\.0\.0\.1:\d+/\S*token=\S+", line)
            url = found.group(0) if found else None
        assert url, "notos review printed no URL with its token"
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and b"notos review" in page.read()
        # The person at the page: mark the second completion of the first record chosen.
        base, token = url.split("/?token=")
        with urllib.request.urlopen(f"{base}/api/records?token={token}&sort=chosen&desc=1", timeout=30) as listing:
            first = json.loads(listing.read())["rows"][0]["prompt_id"]
        body = json.dumps({"prompt_id": first, "completion_index": 1, "field": "chosen", "new": 1}).encode()
        request = urllib.request.Request(f"{base}/api/edit?token={token}", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow  # runs the embedded model, trains, starts Ray
@pytest.mark.timeout(1800)  # a block is several commands: the evaluation block generates on the CPU
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i:02d}-{b[0]}" for i, b in enumerate(BLOCKS)])
def test_readme_block_runs(scratch, index):
    folder, server = scratch
    language, text, skipped = BLOCKS[index]
    if skipped:
        pytest.skip(skipped)
    first = text.splitlines()[0] if text.strip() else ""
    if first.startswith("# file: "):
        (folder / first.removeprefix("# file: ").strip()).write_text(text)
        return
    if language == "yaml":
        return  # an example of configuration, not a command (a runnable one names its file)
    if language == "python":
        done = subprocess.run([sys.executable, "-c", REMOTE.sub(server.base_url, text)], cwd=folder, capture_output=True,
                              text=True, timeout=1200, env={**os.environ, "PYTHONPATH": str(folder)})
        assert done.returncode == 0, done.stderr[-3000:]
        return
    for line in commands(text):
        run_command(line, folder, server)


def test_every_readme_block_is_run_or_says_why():
    assert len(BLOCKS) >= 15
    for language, text, skipped in BLOCKS:
        assert skipped or language in ("bash", "python", "yaml")
        if language == "bash" and not skipped:
            assert all(c.startswith("notos ") for c in commands(text)), text
