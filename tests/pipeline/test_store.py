"""The run folder: secrets redacted, commits atomic, manifest readable."""

import yaml

from notos.pipeline import Pipeline, from_rows, run, step
from notos.pipeline.store import RunStore, redact


def test_redact_hides_secret_like_keys_but_keeps_env_var_names():
    config = {"steps": [{"name": "llm", "api_key": "sk-live-123", "api_key_env": "OPENAI_API_KEY", "headers": {"Authorization": "Bearer x"}}]}
    clean = redact(config)
    step = clean["steps"][0]
    assert step["api_key"] == "***" and step["headers"]["Authorization"] == "***"
    assert step["api_key_env"] == "OPENAI_API_KEY"


def test_no_secret_reaches_the_run_folder(tmp_path):
    @step(inputs=["instruction"], outputs=["ok"])
    def with_secret(row, api_key=None):
        return {"ok": api_key is not None}

    src = from_rows([{"instruction": "x"}])
    src >> with_secret(api_key="sk-do-not-leak-42")
    run(Pipeline(src), tmp_path / "r", progress=False)
    written = b"".join(p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert b"sk-do-not-leak-42" not in written
    assert yaml.safe_load((tmp_path / "r" / "pipeline.yaml").read_text())["steps"][1]["api_key"] == "***"


def test_commit_is_atomic_and_skips_by_signature(tmp_path):
    store = RunStore(tmp_path / "r")
    store.open({"leaves": {}}, "name: x\n")
    store.commit("s", "f" * 64, 3, "abcdef012345", [{"row_id": "a", "x": 1}])
    store.commit("s", "f" * 64, 4, "abcdef012346", [])
    assert store.has("s", "f" * 64, 3, "abcdef012345")
    assert not store.has("s", "f" * 64, 3, "000000000000")
    assert store.load("s", "f" * 64, 3, "abcdef012345") == [{"row_id": "a", "x": 1}]
    assert store.load("s", "f" * 64, 4, "abcdef012346") == []
    assert not list((tmp_path / "r").rglob(".*.tmp-*"))
    fresh = RunStore(tmp_path / "r")  # a new process sees the same commits
    assert fresh.committed("s", "f" * 64).as_dict() == {3: {"abcdef012345"}, 4: {"abcdef012346"}}


def test_a_batch_index_committed_under_two_signatures_keeps_both(tmp_path):
    # An edited input row gives its batch a new signature at the same index: both stay committed,
    # in this process and in the next one's listing.
    store = RunStore(tmp_path / "r")
    store.open({"leaves": {}}, "name: x\n")
    for sig in ("abcdef012345", "0123456789ab"):
        store.commit("s", "f" * 64, 7, sig, [{"row_id": "a", "x": sig}])
    fresh = RunStore(tmp_path / "r")
    for s in (store, fresh):
        assert s.has("s", "f" * 64, 7, "abcdef012345") and s.has("s", "f" * 64, 7, "0123456789ab")
        assert not s.has("s", "f" * 64, 7, "ffffffffffff") and not s.has("s", "f" * 64, 8, "abcdef012345")
        assert s.committed("s", "f" * 64).as_dict() == {7: {"abcdef012345", "0123456789ab"}}
        assert len(s.committed("s", "f" * 64)) == 1
    assert fresh.load("s", "f" * 64, 7, "0123456789ab") == [{"row_id": "a", "x": "0123456789ab"}]


def test_a_column_missing_from_the_first_row_is_kept(tmp_path):
    store = RunStore(tmp_path / "r")
    store.open({"leaves": {}}, "name: x\n")
    rows = [{"row_id": "a", "_error": "gen: failed"}, {"row_id": "b", "_error": None, "answer": "yes"}]
    store.commit("s", "f" * 64, 0, "abcdef012345", rows)
    assert store.load("s", "f" * 64, 0, "abcdef012345") == [
        {"row_id": "a", "_error": "gen: failed", "answer": None},
        {"row_id": "b", "_error": None, "answer": "yes"},
    ]


def test_commits_from_many_threads_encode_parquet_on_one_thread_and_write_on_their_own(tmp_path, monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import notos.pipeline.store as store_module
    from notos.data import atomic

    encoded, written = [], []
    write_table, write_bytes = store_module.pq.write_table, atomic.atomic_write_bytes

    def spy_encode(*args, **kwargs):
        encoded.append(threading.current_thread().name)
        return write_table(*args, **kwargs)

    def spy_write(path, data):
        written.append(threading.current_thread().name)
        return write_bytes(path, data)

    monkeypatch.setattr(store_module.pq, "write_table", spy_encode)
    monkeypatch.setattr("notos.pipeline.storage.atomic_write_bytes", spy_write)
    store = RunStore(tmp_path / "r")
    store.open({"leaves": {}}, "name: x\n")
    written.clear()  # the manifest
    rows = {i: [{"row_id": f"r{i}-{k}", "x": k, "nested": {"a": [i, k]}} for k in range(20)] for i in range(16)}
    with ThreadPoolExecutor(4, thread_name_prefix="committer") as pool:
        list(pool.map(lambda i: store.commit("s", "f" * 64, i, f"{i:012x}", rows[i]), range(16)))
    assert len(encoded) == 16 and set(encoded) == {"notos-arrow_0"}
    assert len(set(written)) > 1 and all(name.startswith("committer") for name in written)  # fsyncs overlap
    assert all(store.load("s", "f" * 64, i, f"{i:012x}") == rows[i] for i in range(16))


def test_a_forked_process_commits_on_an_arrow_thread_of_its_own(tmp_path):
    import multiprocessing

    store = RunStore(tmp_path / "r")
    store.open({"leaves": {}}, "name: x\n")
    store.commit("s", "f" * 64, 0, "0" * 12, [{"row_id": "a", "x": 1}])  # the parent's Arrow thread exists

    child = multiprocessing.get_context("fork").Process(
        target=lambda: store.commit("s", "f" * 64, 1, "1" * 12, [{"row_id": "b", "x": 2}]))
    child.start()
    child.join(30)
    assert child.exitcode == 0  # not stuck waiting on a thread that was not forked with it
    assert RunStore(tmp_path / "r").load("s", "f" * 64, 1, "1" * 12) == [{"row_id": "b", "x": 2}]
