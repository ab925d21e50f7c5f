import threading

import pytest
from review_helpers import review_records, write_jsonl


@pytest.fixture
def review_data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return write_jsonl(folder / "uf.jsonl", review_records())


@pytest.fixture
def gate(monkeypatch):
    """The background audit of a first start waits until the test opens the gate (gate.set())."""
    from notos.review import loading

    opened, real = threading.Event(), loading.flags_of

    def flags_of(table):
        assert opened.wait(30), "the test never opened the gate"
        return real(table)

    monkeypatch.setattr(loading, "flags_of", flags_of)
    return opened
