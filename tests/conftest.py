import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def run_cli(*args, cwd=None, timeout=120, env=None):
    """Run `notos ...` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "notos.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (real data from public projects lives beside the repo)")
    return SHARED_DATA


@pytest.fixture
def llm_server():
    """An OpenAI-compatible server on 127.0.0.1 that answers every task's prompts; stopped after the test."""
    with FakeLLMServer() as server:
        yield server
