"""Run folders on object storage: a real S3-compatible server (moto's server mode) on 127.0.0.1,
started and stopped by the fixture. The same resume test as a local folder — `kill -9` of the
run at several points, commits included — and the commit marker that makes a part trusted."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from notos.errors import NotosError
from notos.pipeline import Pipeline, from_rows, load_run, run, step
from notos.pipeline.store import RunStore

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")
pafs = pytest.importorskip("pyarrow.fs")

from test_resume_kill import STEPS_MODULE as STEPS  # noqa: E402 - the same steps as the local kill test

PIPELINE = """
name: resume
batch_size: 10
steps:
  - {name: prompts, type: load_data, path: prompts.jsonl}
  - {name: slow, type: python, fn: s3_steps:slow, after: prompts}
  - {name: route, type: sample_n, n: 2, seed: 3, per: row, after: slow}
  - {name: g1, type: python, fn: s3_steps:answer, model: m1, after: route}
  - {name: g2, type: python, fn: s3_steps:answer, model: m2, after: route}
  - {name: g3, type: python, fn: s3_steps:answer, model: m3, after: route}
  - {name: group, type: group_columns, columns: [answer, model], output_columns: [answers, models], after: [g1, g2, g3]}
  - {name: rank, type: python, fn: s3_steps:rank, after: group}
  - {name: ranked, type: keep_columns, columns: [instruction, answers, models, rank], after: rank}
"""

DRIVER = """
import sys
from notos.pipeline import run
from notos.recipes import load_pipeline
pipeline, _ = load_pipeline(sys.argv[1])
run(pipeline, sys.argv[2], progress=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 and a bucket; AWS_* variables point this process (and the
    runs it starts) at it while the module's tests run."""
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = boto3.client("s3")
        deadline = time.time() + 30
        while True:
            try:
                client.create_bucket(Bucket="runs")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                assert time.time() < deadline and server.poll() is None, "moto server did not start"
                time.sleep(0.1)
        yield client
    finally:
        server.terminate()
        server.wait(10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def project(folder: Path, n_rows: int = 300) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "s3_steps.py").write_text(STEPS)
    (folder / "pipeline.yaml").write_text(PIPELINE)
    (folder / "prompts.jsonl").write_text("".join(json.dumps({"instruction": f"prompt number {i}"}) + "\n"
                                                  for i in range(n_rows)))
    return folder / "pipeline.yaml"


def keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="runs", Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def markers(client, run: str, step: str) -> int:
    return sum(1 for k in keys(client, f"{run}/cache/{step}-") if k.endswith(".ok"))


def rows_of(out) -> dict:
    return {leaf: ds.to_list() for leaf, ds in load_run(out).items()}


@pytest.mark.slow
def test_kill_9_during_commits_on_s3_then_resume_matches_a_local_run(s3, tmp_path):
    pipeline = project(tmp_path / "project")
    local = tmp_path / "local"
    done = subprocess.run([sys.executable, "-c", DRIVER, str(pipeline), str(local)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    expected = rows_of(local)

    uri = "s3://runs/killed"
    kill_points = [lambda: markers(s3, "killed", "slow") >= 2, lambda: markers(s3, "killed", "slow") >= 10,
                   lambda: markers(s3, "killed", "g1") >= 14, lambda: markers(s3, "killed", "rank") >= 1]
    kills = 0
    for ready in kill_points:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(pipeline), uri], stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 90
        while proc.poll() is None and not ready():
            assert time.time() < deadline, "the run neither reached the kill point nor finished"
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the run commits all the time: this lands among commits
            kills += 1
        proc.wait()
    assert kills >= 3, "the run finished before most kill points"
    final = subprocess.run([sys.executable, "-c", DRIVER, str(pipeline), uri], capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr
    got = rows_of(uri)
    assert got == expected
    for leaf, rows in got.items():
        ids = [r["row_id"] for r in rows]
        assert len(ids) == len(set(ids)), f"duplicates in {leaf}"
    manifest = json.loads(s3.get_object(Bucket="runs", Key="killed/manifest.json")["Body"].read())
    assert manifest["status"] == "complete"
    stats = json.loads(s3.get_object(Bucket="runs", Key="killed/stats.json")["Body"].read())
    assert stats["slow"]["rows_in"] < 300  # the last run did not redo what was committed
    listing = json.loads(s3.get_object(Bucket="runs", Key="killed/data/ranked/_notos.json")["Body"].read())
    assert sorted(k.rsplit("/", 1)[1] for k in keys(s3, "killed/data/ranked/")) == sorted([*listing["files"], "_notos.json"])


@step(inputs=["instruction"], outputs=["answer"])
def shout(row):
    return {"answer": row["instruction"].upper()}


def small(n: int = 30) -> Pipeline:
    src = from_rows([{"instruction": f"q{i}"} for i in range(n)])
    src >> shout()
    return Pipeline(src, batch_size=10)


def test_a_part_without_its_commit_marker_is_not_trusted(s3):
    uri = "s3://runs/marker"
    run(small(), uri, progress=False)
    parts = sorted(k for k in keys(s3, "marker/cache/shout-") if k.endswith(".parquet"))
    assert len(parts) == 3 and all(s3.head_object(Bucket="runs", Key=p + ".ok") for p in parts)
    # As if the writer died between the part and its marker: the part alone is not committed.
    s3.delete_object(Bucket="runs", Key=parts[1] + ".ok")
    store = RunStore(uri)
    fp = parts[1].split("/")[2].split("-", 1)[1]
    assert len(store.committed("shout", fp)) == 2
    again = run(small(), uri, progress=False)
    assert again.stats["shout"]["rows_in"] == 10  # exactly the untrusted batch, computed again
    assert [r["answer"] for r in load_run(uri)["shout"]] == [f"Q{i}" for i in range(30)]


def test_a_second_publication_replaces_the_first_whole(s3):
    uri = "s3://runs/twice"
    run(small(30), uri, progress=False)
    run(small(20), uri, progress=False)
    assert len(load_run(uri)["shout"]) == 20
    data = [k for k in keys(s3, "twice/data/shout/") if k.endswith(".parquet")]
    assert len(data) == 2  # the first publication's three parts are gone


def test_a_folder_that_is_not_a_run_is_refused_with_one_line(s3):
    s3.put_object(Bucket="runs", Key="other/readme.txt", Body=b"mine")
    with pytest.raises(NotosError, match="s3://runs/other: not empty and not a notos run folder"):
        run(small(), "s3://runs/other", progress=False)
    with pytest.raises(NotosError, match="s3://runs/none: not a notos run folder"):
        load_run("s3://runs/none")


def test_memory_uris_go_through_fsspec(tmp_path):
    pytest.importorskip("fsspec")
    result = run(small(), "memory://notos-test/run", progress=False)
    assert result.rows == {"shout": 30}
    assert [r["answer"] for r in load_run("memory://notos-test/run")["shout"]] == [f"Q{i}" for i in range(30)]


def test_the_cli_takes_a_uri_for_out(cli, tmp_path):
    """`notos run ... --out memory://...` (any URI fsspec opens) keeps its scheme: a Path would
    fold `s3://b` into `s3:/b`."""
    from notos.pipeline import load_run

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(f'{{"id": "r{i}", "instruction": "say {i}"}}\n' for i in range(3)))
    yaml_path = tmp_path / "p.yaml"
    yaml_path.write_text(f"name: p\nsteps:\n  - name: rows\n    type: load_data\n    path: {data}\n    id_column: id\n"
                         "  - name: keep\n    type: keep_columns\n    columns: [instruction]\n    after: rows\n")
    done = cli("run", yaml_path, "--out", "memory://notos-cli-test/run", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert sorted(load_run("memory://notos-cli-test/run")["keep"]["instruction"]) == ["say 0", "say 1", "say 2"]
