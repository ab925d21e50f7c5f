"""The Ray executor: the shipped ultrafeedback recipe on a local Ray cluster gives the rows of the
local executor, survives a SIGKILL of its driver (rerun: no duplicates, no loss) and a worker
killed mid-batch. One cluster for the module (`ray.init(num_cpus=2)`), shut down after it."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_llm_server import FakeLLMServer

from notos.errors import NotosError
from notos.pipeline import load_run, run
from notos.recipes import load_pipeline

ray = pytest.importorskip("ray")
from notos.pipeline.executors.ray import RayExecutor

pytestmark = pytest.mark.slow  # a Ray cluster takes seconds to start on 2 cores
PROMPTS = [{"id": f"p{i:03d}", "instruction": f"Plain question {i}?"} for i in range(40)]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def server():
    with FakeLLMServer(latency=0.05) as fake:
        yield fake


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PROMPTS))
    return path


def recipe(prompts: Path, base_url: str, batch_size: int = 8):
    pipeline, _ = load_pipeline("ultrafeedback", input_path=str(prompts), llm_server={"base_url": base_url})
    pipeline.batch_size = batch_size
    return pipeline


def rows_of(out) -> dict:
    return {leaf: ds.to_list() for leaf, ds in load_run(out).items()}


@pytest.fixture(scope="module")
def reference(prompts, server, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    run(recipe(prompts, server.base_url), out, progress=False)
    return rows_of(out)


def no_duplicates(rows: dict) -> None:
    for leaf, got in rows.items():
        ids = [r["row_id"] for r in got]
        assert len(ids) == len(set(ids)), f"duplicates in {leaf}"


def test_the_recipe_on_ray_gives_the_rows_of_the_local_executor(cluster, server, prompts, reference, tmp_path):
    executor = RayExecutor(resources={"gen_a": {"replicas": 2}})
    result = run(recipe(prompts, server.base_url), tmp_path / "ray", progress=False, executor=executor)
    got = rows_of(tmp_path / "ray")
    assert got == reference and len(got["records"]) == len(PROMPTS)
    assert all(r["_error"] is None for r in got["records"])
    assert len(executor.pools["gen_a"].actors) == 2 and executor.pools["gen_a"] is not executor.pools["gen_b"]
    assert executor.pools["gen_b"] is executor.pools["rate"] and len(executor.pools["rate"].actors) == 2  # shared
    assert "combine" not in executor.pools  # the engine's column steps stay on the driver
    stats = result.stats
    assert stats["prompts"]["rows_out"] == len(PROMPTS)
    assert sum(stats[f"gen_{c}"]["rows_in"] for c in "abcdef") == 3 * len(PROMPTS)
    assert stats["rate"]["rows_in"] == len(PROMPTS) and stats["rate"]["tokens"] > 0
    assert stats["critique"]["commit_seconds"] > 0  # committed by the workers, counted on the driver
    # a rerun finds every batch committed and starts no actor
    again = run(recipe(prompts, server.base_url), tmp_path / "ray", progress=False, executor=executor)
    assert all(numbers["rows_in"] == 0 for name, numbers in again.stats.items() if name != "prompts")
    assert not any(pool.actors for pool in executor.pools.values())


DRIVER = """
import sys
from notos.pipeline import run
from notos.pipeline.executors.ray import RayExecutor
from notos.recipes import load_pipeline
pipeline, _ = load_pipeline("ultrafeedback", input_path=sys.argv[1], llm_server={"base_url": sys.argv[2]})
pipeline.batch_size = 8
run(pipeline, sys.argv[3], progress=False, executor=RayExecutor(address=sys.argv[4]))
"""


def parts(out: Path, step: str) -> int:
    return sum(1 for folder in (out / "cache").glob(f"{step}-*") for f in folder.glob("part-*"))


def test_sigkill_of_the_driver_then_a_rerun_loses_and_duplicates_nothing(cluster, prompts, reference, tmp_path):
    out = tmp_path / "killed"
    with FakeLLMServer(latency=0.3) as slow:  # slow enough to kill the driver mid-run
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(prompts), slow.base_url, str(out), cluster],
                                  stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while parts(out, "critique") < 1 or parts(out, "gen_a") + parts(out, "gen_b") < 2:
            assert driver.poll() is None, driver.stderr.read()
            assert time.time() < deadline, "the driver never committed a batch"
            time.sleep(0.02)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        assert parts(out, "records") < len(PROMPTS) // 8  # killed before the end
        assert json.loads((out / "manifest.json").read_text())["status"] == "running"
        before = parts(out, "critique")
        result = run(recipe(prompts, slow.base_url), out, progress=False, executor=RayExecutor())
    got = rows_of(out)
    assert got == reference
    no_duplicates(got)
    assert result.stats["critique"]["rows_in"] <= len(PROMPTS) - before * 8  # committed batches were not redone
    assert not list(out.rglob(".*.tmp-*"))


def test_a_worker_killed_mid_batch_is_retried_and_the_run_completes(cluster, prompts, reference, tmp_path):
    out = tmp_path / "worker"
    executor = RayExecutor()
    with FakeLLMServer(latency=0.3) as slow:
        errors = []
        driver = threading.Thread(target=lambda: _run_into(errors, recipe(prompts, slow.base_url), out, executor))
        driver.start()
        deadline = time.time() + 120
        while "rate" not in executor.pools or not executor.pools["rate"].actors:
            assert driver.is_alive(), errors
            assert time.time() < deadline
            time.sleep(0.02)
        while not any("<text 1>" in r["messages"][-1]["content"] for r in slow.requests[-20:]):
            time.sleep(0.02)  # the judge is asking: a rate batch is in flight on its actor
        pids = executor.worker_pids()["rate"]  # the shared workers, each with batches in flight
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        driver.join(180)
    assert not driver.is_alive() and not errors, errors
    judged = sum(1 for r in slow.requests if "<text 1>" in r["messages"][-1]["content"])
    assert judged > 4 * len(PROMPTS)  # 4 aspects a row, and the killed batch asked again
    got = rows_of(out)
    assert got == reference
    no_duplicates(got)


def _run_into(errors: list, pipeline, out, executor) -> None:
    try:
        run(pipeline, out, progress=False, executor=executor)
    except BaseException as exc:  # noqa: BLE001 - the test thread reports it
        errors.append(exc)


def test_an_unknown_step_in_resources_is_one_line(cluster, prompts, server, tmp_path):
    with pytest.raises(NotosError, match="no step named 'gen_z'"):
        run(recipe(prompts, server.base_url), tmp_path / "bad", progress=False,
            executor=RayExecutor(resources={"gen_z": {"num_gpus": 1}}))
    with pytest.raises(NotosError, match="step 'rate': unknown resources setting 'gpus'"):
        run(recipe(prompts, server.base_url), tmp_path / "bad2", progress=False,
            executor=RayExecutor(resources={"rate": {"gpus": 1}}))


def test_a_placed_step_spreads_over_its_actors_and_a_leaf_ships_back_no_rows(cluster, prompts, tmp_path, monkeypatch):
    from notos.pipeline import Pipeline, keep_columns, load_data, rename_columns
    from notos.pipeline.executors import ray as ray_executor

    def pipeline():
        source = load_data(str(prompts), id_column="id", name="prompts")
        source >> rename_columns({"instruction": "question"}, name="rename") >> keep_columns(["question"], name="keep")
        return Pipeline(source, name="columns", batch_size=4)

    returned: dict[str, list] = {"rename": [], "keep": []}
    original = ray_executor.WorkerPool.run

    async def spy(self, step, inputs, unread=None):
        rows, counts = await original(self, step, inputs, unread)
        returned[step.name].append((rows, counts["rows_out"]))
        return rows, counts

    monkeypatch.setattr(ray_executor.WorkerPool, "run", spy)
    local = run(pipeline(), tmp_path / "local", progress=False)
    executor = RayExecutor(resources={"rename": {"replicas": 2}, "keep": {"replicas": 2}})
    result = run(pipeline(), tmp_path / "ray", progress=False, executor=executor)
    assert rows_of(tmp_path / "ray") == rows_of(tmp_path / "local") and result.rows == local.rows == {"keep": 40}
    assert result.stats["keep"]["rows_out"] == 40 and result.stats["keep"]["batches"] == 10
    # The middle step's rows come back to be sent on; the leaf's were committed where they were
    # computed, and only their count travels.
    assert [len(rows) for rows, _ in returned["rename"]] == [4] * 10
    assert [(rows, n) for rows, n in returned["keep"]] == [(None, 4)] * 10
    # Each actor has its next batch waiting: 2 batches per actor out at once, and both computed.
    keep = executor.pools["keep"]
    assert keep.in_flight(keep.steps[0]) == 4
    busy = executor.busy_seconds()["keep"]
    assert len(busy) == 2 and all(seconds > 0 for seconds in busy)


def test_retry_failed_and_retry_unparsed_on_ray_keep_what_was_read_and_ask_the_rest(cluster, tmp_path):
    # The worker keeps a retried batch's good rows by the driver's plan: which rows failed, and
    # which could not be read here or before this step (it does not see those steps itself).
    from notos.pipeline import Pipeline, from_rows
    from notos.tasks import critique

    rows = [{"instruction": f"q{i}", "generations": [f"a{i} [4]", f"b{i} [500x1]" if i % 4 == 1 else
                                                     f"b{i} [garble]" if i % 4 == 2 else f"b{i} [2]"]} for i in range(8)]
    with FakeLLMServer() as judge:
        def pipeline():
            llm = {"backend": "openai", "base_url": judge.base_url, "model": "critic", "max_retries": 0}
            return Pipeline(from_rows(rows=rows) >> critique(llm=llm, name="critique"), batch_size=4)

        out, executor = tmp_path / "ray", RayExecutor()
        first = run(pipeline(), out, progress=False, executor=executor)
        assert first.stats["critique"]["rows_failed"] == 2 and first.stats["critique"]["rows_unparsed"] == 2
        asked = len(judge.requests)
        failed = run(pipeline(), out, progress=False, executor=executor, retry_failed=True)
        assert len(judge.requests) == asked + 2 * 2  # the 2 failed rows, both their responses
        assert failed.stats["critique"]["rows_failed"] == 0 and failed.stats["critique"]["rows_cached"] == 6
        asked = len(judge.requests)
        unread = run(pipeline(), out, progress=False, executor=executor, retry_unparsed=True)
        assert len(judge.requests) == asked + 2 * 2 and unread.stats["critique"]["rows_unparsed"] == 0
    got = load_run(out)["critique"].to_list()
    assert len(got) == 8 and all(r["_error"] is None and None not in r["overall_scores"] for r in got)
