"""The text_generation step in pipelines: per-row failures, usage, resume, CLI pointing, secrets."""

import json

import pytest
import yaml

from notos.errors import GraphError
from notos.pipeline import from_rows, load_run, run
from notos.tasks import text_generation


def server_llm(server, **extra):
    return {"backend": "openai", "base_url": server.base_url, "model": "m1", "max_retries": 1,
            "backoff_base": 0.01, "timeout": 0.5, **extra}


def rows_of(*texts):
    return [{"instruction": t} for t in texts]


def test_failed_requests_fail_only_their_rows_and_usage_adds_up(llm_server, tmp_path):
    texts = ["alpha", "[500] broken", "beta gamma", "[empty] blank", "[hang] stuck", "[500x1] flaky", "delta"]
    pipe = from_rows(rows=rows_of(*texts)) >> text_generation(llm=server_llm(llm_server), name="answer", max_new_tokens=32)
    result = run(pipe, tmp_path / "r", progress=False)
    rows = {r["instruction"]: r for r in load_run(tmp_path / "r")["answer"].to_list()}
    assert len(rows) == 7
    assert rows["alpha"]["generation"] == "Answer to: alpha" and rows["alpha"]["_error"] is None
    assert rows["alpha"]["model_name"] == "m1" and rows["alpha"]["finish_reason"] == "stop"
    assert rows["alpha"]["usage"] == {"prompt_tokens": 1, "completion_tokens": 3}
    assert rows["[500] broken"]["_error"] == "answer: HTTP 500 internal failure (2 attempts)"
    assert rows["[empty] blank"]["_error"] == "answer: empty generation (finish_reason stop)"
    assert rows["[hang] stuck"]["_error"] == "answer: timed out after 0.5 s (2 attempts)"
    assert rows["[500x1] flaky"]["_error"] is None
    assert result.stats["answer"]["rows_failed"] == 3
    usage = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in rows.values())
    assert result.stats["answer"]["tokens"] == usage > 0


def test_rerun_sends_no_request_again(llm_server, tmp_path):
    pipe = lambda: from_rows(rows=rows_of("a", "b", "c")) >> text_generation(llm=server_llm(llm_server), name="answer")  # noqa: E731
    run(pipe(), tmp_path / "r", progress=False)
    sent = len(llm_server.requests)
    run(pipe(), tmp_path / "r", progress=False)
    assert sent == 3 and len(llm_server.requests) == 3


def test_several_generations_and_a_system_prompt(llm_server, tmp_path):
    step = text_generation(llm=server_llm(llm_server), name="answer", num_generations=2, system_prompt="Be brief.", seed=3)
    run(from_rows(rows=rows_of("one")) >> step, tmp_path / "r", progress=False)
    [row] = load_run(tmp_path / "r")["answer"].to_list()
    assert row["generation"] == ["Answer to: one"] * 2 and row["finish_reason"] == ["stop", "stop"]
    body = llm_server.requests[0]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."} and body["n"] == 2 and body["seed"] == 3


def test_earlier_turns_and_a_temperature_per_row(llm_server, tmp_path):
    """MT-Bench's second turn: the first exchange goes before the new question, at the row's temperature."""
    rows = [{"instruction": "and then?", "turns": [["first?", "first answer"]], "temp": 0.0},
            {"instruction": "plain", "turns": [], "temp": None}]
    step = text_generation(llm=server_llm(llm_server), name="answer", context_column="turns", temperature_column="temp",
                           temperature=0.7)
    run(from_rows(rows=rows) >> step, tmp_path / "r", progress=False)
    by_last = {b["messages"][-1]["content"]: b for b in llm_server.requests}
    assert by_last["and then?"]["messages"] == [
        {"role": "user", "content": "first?"}, {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "and then?"}]
    assert by_last["and then?"]["temperature"] == 0.0 and by_last["plain"]["temperature"] == 0.7
    assert len(by_last["plain"]["messages"]) == 1


@pytest.mark.parametrize("options, message", [
    ({"llm": "gpt-4"}, "cannot read spec 'gpt-4'"),
    ({"llm": {"backend": "nope"}}, "unknown backend 'nope'"),
    ({"llm": {"backend": "openai", "api_key": "sk-x"}}, "option 'api_key' would write a secret"),
    ({"llm": {"backend": "openai", "temprature": 1}}, "unknown option 'temprature'"),
    ({"temperature": -1}, "option 'temperature'"),
    ({"top_p": 0}, "option 'top_p'"),
    ({"num_generations": 0}, "option 'num_generations'"),
    ({"stop": "\n"}, "option 'stop' must be a list"),
])
def test_bad_step_options(options, message):
    with pytest.raises(GraphError, match=message):
        text_generation(name="answer", **options)


def write_recipe(folder, llm="embedded"):
    (folder / "prompts.jsonl").write_text("".join(json.dumps({"instruction": f"question {i}"}) + "\n" for i in range(5)))
    recipe = {"name": "gen", "steps": [
        {"name": "prompts", "type": "load_data", "path": "prompts.jsonl"},
        {"name": "answer", "type": "text_generation", "after": "prompts", "llm": llm, "max_new_tokens": 64},
    ]}
    path = folder / "gen.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_cli_points_every_llm_at_a_server_and_keeps_the_key_secret(cli, llm_server, tmp_path):
    recipe = write_recipe(tmp_path)
    out = tmp_path / "run"
    secret = "sk-notos-test-secret-4242"
    done = cli("run", recipe, "--out", out, "--no-progress", "--llm-base-url", llm_server.base_url,
               "--llm-model", "served-model", "--llm-api-key-env", "NOTOS_TEST_KEY",
               "--set", "answer.temperature=0.2", env={"NOTOS_TEST_KEY": secret})
    assert done.returncode == 0, done.stderr
    rows = load_run(out)["answer"].to_list()
    assert [r["generation"] for r in rows] == [f"Answer to: question {i}" for i in range(5)]
    assert {r["model_name"] for r in rows} == {"served-model"}
    assert all(b["model"] == "served-model" and b["temperature"] == 0.2 and b["max_tokens"] == 64 for b in llm_server.requests)
    assert {h["Authorization"] for h in llm_server.headers} == {f"Bearer {secret}"}
    leaked = [p for p in out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []
    assert secret not in done.stdout + done.stderr
    saved = yaml.safe_load((out / "pipeline.yaml").read_text())
    assert saved["steps"][1]["llm"]["api_key_env"] == "NOTOS_TEST_KEY"
    assert saved["steps"][1]["max_new_tokens"] == 64  # a setting, not a secret: kept as is


def test_cli_model_auto_uses_the_served_model(cli, llm_server, tmp_path):
    done = cli("run", write_recipe(tmp_path), "--out", tmp_path / "run", "--no-progress", "--llm-base-url", llm_server.base_url)
    assert done.returncode == 0, done.stderr
    assert {r["model_name"] for r in load_run(tmp_path / "run")["answer"].to_list()} == {"fake-model"}


def test_shipped_quickstart_against_a_server(cli, llm_server, tmp_path):
    done = cli("run", "quickstart", "--out", tmp_path / "qs", "--no-progress", "--llm-base-url", llm_server.base_url)
    assert done.returncode == 0, done.stderr
    rows = load_run(tmp_path / "qs")["dataset"].to_list()
    assert len(rows) == 20 and all(r["generations"] == [f"Answer to: {r['instruction']}"] * 3 for r in rows)
    assert all(r["ratings"] == [3, 3, 3] and r["rating_model"] == "fake-model" for r in rows)  # the server judged (text mode)
    assert "ONE small model" not in done.stdout  # the embedded-model note no longer applies


@pytest.mark.parametrize("args, message", [
    (["--llm-model", "x"], "--llm-model, --llm-models and --llm-api-key-env go with --llm-base-url"),
    (["--set", "answer.llm=bogus"], "step 'answer': llm: cannot read spec 'bogus'"),
    (["--set", "answer.temperature=hot"], "step 'answer': option 'temperature' has a bad value 'hot'"),
    (["--set", "answer.llm={backend: openai, token: abc}"], "option 'token' would write a secret"),
])
def test_cli_bad_llm_input_is_one_line(cli, tmp_path, args, message):
    done = cli("run", write_recipe(tmp_path), "--out", tmp_path / "run", "--no-progress", *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {message}" or message in done.stderr.strip().splitlines()[0]
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_cli_wrong_key_stops_the_run_in_one_line(cli, llm_server, tmp_path):
    (tmp_path / "p.jsonl").write_text(json.dumps({"instruction": "[401] hi"}) + "\n")
    recipe = {"name": "g", "steps": [{"name": "prompts", "type": "load_data", "path": "p.jsonl"},
                                     {"name": "answer", "type": "text_generation", "after": "prompts"}]}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(recipe))
    done = cli("run", tmp_path / "g.yaml", "--out", tmp_path / "run", "--no-progress", "--llm-base-url", llm_server.base_url,
               "--llm-model", "m", "--llm-api-key-env", "NOTOS_TEST_KEY", env={"NOTOS_TEST_KEY": "sk-wrong-one"})
    assert done.returncode == 2
    assert "HTTP 401 invalid api key (key from $NOTOS_TEST_KEY)" in done.stderr and "sk-wrong-one" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_models_command(cli):
    done = cli("models", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    embedded = listing["models"][0]
    assert embedded["spec"] == "embedded" and embedded["ready"] and embedded["where"].endswith(".gguf")
    assert {b["backend"] for b in listing["backends"]} == {"openai", "transformers", "vllm", "llamacpp"}
    table = cli("models")
    assert table.returncode == 0 and "SmolLM2-135M-Instruct" in table.stdout and embedded["where"] in table.stdout


def test_import_order_does_not_matter():
    import subprocess
    import sys

    for code in ("from notos.tasks import text_generation", "import notos; notos.text_generation",
                 "from notos.tasks.generation import text_generation", "import notos.llms"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (code, done.stderr)


def test_connection_settings_do_not_change_the_fingerprint():
    base = {"backend": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"}
    plain = text_generation(llm=base, name="answer")
    tuned = text_generation(llm={**base, "max_concurrency": 4, "timeout": 30, "rpm": 60, "max_retries": 2,
                                 "api_key_env": "K"}, name="answer")
    other_model = text_generation(llm={**base, "model": "m2"}, name="answer")
    hotter = text_generation(llm=base, name="answer", temperature=1.0)
    assert plain.own_hash() == tuned.own_hash()
    assert len({plain.own_hash(), other_model.own_hash(), hotter.own_hash()}) == 3


def test_a_server_that_ignores_n_fails_the_row(llm_server, tmp_path):
    step = text_generation(llm=server_llm(llm_server), name="answer", num_generations=2)
    run(from_rows(rows=rows_of("[ignore_n] one", "two")) >> step, tmp_path / "r", progress=False)
    rows = {r["instruction"]: r for r in load_run(tmp_path / "r")["answer"].to_list()}
    assert "asked for 2 generations, the backend returned 1" in rows["[ignore_n] one"]["_error"]
    assert rows["two"]["generation"] == ["Answer to: two"] * 2


@pytest.mark.parametrize("llm, message", [
    ({"backend": "openai", "api_key_env": "sk-proj-abc123-not-a-name"}, "must be the NAME of an environment variable"),
    ({"backend": "openai", "base_url": "http://me:sk-secret@host/v1"}, "must not contain credentials"),
    ({"backend": "openai", "base_url": "http://host/v1?api_key=sk-secret"}, "must not carry a key"),
    ({"backend": "openai", "rpm": "fast"}, "option 'rpm'"),
    ({"backend": "transformers", "device": "gpu0"}, "option 'device'"),
])
def test_specs_that_would_leak_or_are_wrong_fail_at_build_time(llm, message):
    with pytest.raises(GraphError, match=message) as info:
        text_generation(llm=llm, name="answer")
    assert "sk-" not in str(info.value)


def test_a_key_given_as_the_variable_name_is_refused_without_echo(cli, tmp_path):
    done = cli("run", write_recipe(tmp_path), "--out", tmp_path / "run", "--no-progress",
               "--llm-base-url", "http://127.0.0.1:9/v1", "--llm-api-key-env", "sk-proj-SECRET123")
    assert done.returncode == 2 and "sk-proj-SECRET123" not in done.stderr + done.stdout
    assert "api_key_env must be the NAME" in done.stderr
    assert not (tmp_path / "run").exists()


def test_cli_retry_failed_sends_only_the_failed_requests_again(cli, llm_server, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"instruction": t}) + "\n" for t in ["one", "[500x1] two", "three", "[429x1] four"]))
    recipe = {"name": "g", "steps": [
        {"name": "prompts", "type": "load_data", "path": "p.jsonl"},
        {"name": "answer", "type": "text_generation", "after": "prompts",
         "llm": {"backend": "openai", "base_url": llm_server.base_url, "model": "m", "max_retries": 0}},
    ]}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(recipe))
    args = ("run", tmp_path / "g.yaml", "--out", tmp_path / "run", "--no-progress")
    assert cli(*args).returncode == 0
    assert sum(1 for r in load_run(tmp_path / "run")["answer"].to_list() if r["_error"]) == 2
    done = cli(*args, "--retry-failed")
    assert done.returncode == 0, done.stderr
    rows = load_run(tmp_path / "run")["answer"].to_list()
    assert [r["generation"] for r in rows] == [f"Answer to: {t}" for t in ["one", "[500x1] two", "three", "[429x1] four"]]
    assert dict(llm_server.attempts) == {"one": 1, "[500x1] two": 2, "three": 1, "[429x1] four": 2}
