import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def run_cli_process(*args, cwd=None, timeout=120, env=None):
    """Run `notos ...` in a subprocess, as a user would: for what only a process shows
    (signals, interpreter start-up, a clean environment)."""
    return subprocess.run(
        [sys.executable, "-m", "notos.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})},
    )


def run_cli(*args, cwd=None, timeout=None, env=None):
    """Run `notos ...` in this process through `notos.cli.main` (a subprocess costs ~2.5 s of
    imports); same result shape as subprocess.run: returncode, stdout, stderr."""
    from notos.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _environment(env), _folder(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # a command that exits by itself
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["notos", *map(str, args)], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _environment(extra):
    saved = dict(os.environ)
    os.environ.update({k: str(v) for k, v in (extra or {}).items()})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _folder(path):
    before = os.getcwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def cli_process():
    return run_cli_process


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        message = f"{SHARED_DATA} is absent (real data from public projects lives beside the repo)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI has it: a missing copy is a broken set-up, not a reason to skip
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture
def llm_server():
    """An OpenAI-compatible server on 127.0.0.1 that answers every task's prompts; stopped after the test."""
    with FakeLLMServer() as server:
        yield server
