import pytest
from review_helpers import review_records, write_jsonl


@pytest.fixture
def review_data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return write_jsonl(folder / "uf.jsonl", review_records())
