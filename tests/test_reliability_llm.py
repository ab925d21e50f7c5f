"""Reliability of runs that talk to LLM servers (issue 13, items 3, 4, 5, 10), through the CLI
against the real loopback server (`tests/fake_llm_server.py`):

- the ultrafeedback recipe runs on plain prompts (`id`, `instruction`): world knowledge is optional;
- a dead server (a closed port) or one that answers only HTTP 500 stops the run early with one
  line and a non-zero exit; a run whose leaf has no ok row exits 3, naming the leaf;
- a server echoing the request headers (Authorization) in its 401 / 500 bodies: the key appears
  in no file of the run folder, nor on stdout / stderr;
- `--llm-timeout` / `--llm-max-retries` reach the client of every LLM served over HTTP.
"""

from __future__ import annotations

import json
import socket
import time

import pyarrow.parquet as pq
import pytest
from fake_llm_server import FakeLLMServer

from notos.llms.http_client import OpenAICompatible, redact
from notos.llms.spec import parse_spec
from notos.pipeline import load_run

KEY_ENV = "NOTOS_TEST_RELIABILITY_KEY"
KEY = "sk-test-Zq8v3LmN5pR7tW9xY2bC4dF6gH8jK0"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def generation_yaml(tmp_path, llm: str, rows) -> str:
    write_jsonl(tmp_path / "data.jsonl", rows)
    (tmp_path / "p.yaml").write_text(
        "name: gen\nbatch_size: 4\nsteps:\n"
        "  - {name: src, type: load_data, path: data.jsonl, id_column: id}\n"
        f"  - {{name: gen, type: text_generation, after: src, llm: '{llm}'}}\n"
    )
    return str(tmp_path / "p.yaml")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


PLAIN = [{"id": f"p{i}", "instruction": f"Plain question {i}?"} for i in range(100)]


# -- item 3: plain prompts through the ultrafeedback recipe ------------------------------------

def test_ultrafeedback_runs_on_plain_prompts(llm_server, cli, tmp_path):
    rows = PLAIN[:4] + [
        {"id": "k1", "instruction": "Is the moon made of cheese?", "correct_answers": ["No, rock."], "incorrect_answers": None},
        {"id": "k2", "instruction": "Is water wet?", "correct_answers": None, "incorrect_answers": None},
    ]
    source = write_jsonl(tmp_path / "plain.jsonl", PLAIN[:4])
    done = cli("run", "ultrafeedback", "--input", source, "--llm-base-url", llm_server.base_url,
               "--out", tmp_path / "uf", "--no-progress")
    assert done.returncode == 0, done.stderr
    records = load_run(tmp_path / "uf")["records"].to_list()
    assert len(records) == 4 and all(r["_error"] is None for r in records)
    assert all(c["annotations"]["truthfulness"]["Rating"] == "3" for r in records for c in r["completions"])

    # A column present in some rows only: used where a row has a value, never "None" in the prompt.
    mixed = write_jsonl(tmp_path / "mixed.jsonl", rows)
    done = cli("run", "ultrafeedback", "--input", mixed, "--llm-base-url", llm_server.base_url,
               "--out", tmp_path / "uf2", "--no-progress")
    assert done.returncode == 0, done.stderr
    rating = [r["messages"][-1]["content"] for r in llm_server.requests if "<text 1>" in r["messages"][-1]["content"]]
    moon = [t for t in rating if "moon made of cheese" in t]
    assert any("Known correct answers (world knowledge):\n- No, rock." in t for t in moon)
    assert not any("Known incorrect answers" in t for t in moon)
    assert not any("world knowledge" in t for t in rating if "moon" not in t)
    assert all(r["_error"] is None for r in load_run(tmp_path / "uf2")["records"].to_list())


# -- item 4: a dead or always-failing server stops early; a leaf with no ok row exits 3 ----------

def test_a_closed_port_stops_the_run_early_with_one_line(cli, tmp_path):
    port = closed_port()
    source = write_jsonl(tmp_path / "plain.jsonl", PLAIN)
    started = time.monotonic()
    done = cli("run", "ultrafeedback", "--input", source, "--llm-base-url", f"http://127.0.0.1:{port}/v1",
               "--llm-model", "m", "--llm-max-retries", "1", "--out", tmp_path / "out", "--no-progress")
    assert time.monotonic() - started < 20
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert line.startswith("error: ") and "the first 8 requests all failed: connection error" in line and str(port) in line


def test_a_server_answering_only_500_stops_the_run_early(cli, tmp_path):
    source = write_jsonl(tmp_path / "plain.jsonl", PLAIN)
    with FakeLLMServer(always="500") as server:
        started = time.monotonic()
        done = cli("run", "ultrafeedback", "--input", source, "--llm-base-url", server.base_url,
                   "--llm-max-retries", "1", "--out", tmp_path / "out", "--no-progress")
        assert time.monotonic() - started < 20
        # Stopped: the first attempts already in flight, not 100 rows x 3 generators x 2 attempts.
        assert len(server.requests) < 250
    assert done.returncode != 0
    assert "the first 8 requests all failed: HTTP 500 internal failure" in one_line(done.stderr)


def test_the_default_retries_still_stop_a_dead_server_in_seconds(cli, tmp_path):
    """The figure from the issue: 100 prompts against a closed port took 109 s and exited 0."""
    source = write_jsonl(tmp_path / "plain.jsonl", PLAIN)
    started = time.monotonic()
    done = cli("run", "ultrafeedback", "--input", source, "--llm-base-url", f"http://127.0.0.1:{closed_port()}/v1",
               "--llm-model", "m", "--out", tmp_path / "out", "--no-progress")
    assert done.returncode != 0 and "the first 8 requests all failed" in one_line(done.stderr)
    assert time.monotonic() - started < 40


def test_a_finished_run_whose_leaf_has_no_ok_row_exits_3(llm_server, cli, tmp_path):
    # 3 failing rows: fewer than the early stop needs, so the run finishes, every row failed.
    yaml_path = generation_yaml(tmp_path, llm_server.base_url, [{"id": f"r{i}", "instruction": f"[500] q{i}"} for i in range(3)])
    done = cli("run", yaml_path, "--llm-max-retries", "0", "--out", tmp_path / "out", "--no-progress")
    assert done.returncode == 3, done.stderr
    line = one_line(done.stderr)
    assert "leaf 'gen'" in line and "all 3 rows failed" in line and "HTTP 500" in line

    # One ok row among failures: a normal finish.
    yaml_path = generation_yaml(tmp_path, llm_server.base_url, [{"id": "ok", "instruction": "fine"},
                                                                {"id": "bad", "instruction": "[500] again"}])
    done = cli("run", yaml_path, "--llm-max-retries", "0", "--out", tmp_path / "out2", "--no-progress")
    assert done.returncode == 0, done.stderr


# -- item 5: the key never reaches a file, stdout or stderr ------------------------------------

def assert_key_absent(run_dir, *texts):
    for text in texts:
        assert KEY not in text
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
        if path.suffix == ".parquet":  # compressed pages could hide it from a byte scan
            assert KEY not in str(pq.read_table(path).to_pylist()), path


def test_a_server_echoing_headers_never_puts_the_key_in_the_run(cli, tmp_path):
    rows = ([{"id": f"ok{i}", "instruction": f"fine {i}"} for i in range(4)]
            + [{"id": f"once{i}", "instruction": f"[500x1] flaky {i}"} for i in range(3)]
            + [{"id": f"bad{i}", "instruction": f"[500] broken {i}"} for i in range(3)])
    with FakeLLMServer(echo_headers=True) as server:
        yaml_path = generation_yaml(tmp_path, server.base_url, rows)
        done = cli("run", yaml_path, "--llm-base-url", server.base_url, "--llm-api-key-env", KEY_ENV,
                   "--llm-max-retries", "1", "--out", tmp_path / "out", "--no-progress", env={KEY_ENV: KEY})
        assert any(h.get("Authorization") == f"Bearer {KEY}" for h in server.headers)  # the key was sent
    assert done.returncode == 0, done.stderr
    errors = {r["row_id"]: r["_error"] for r in load_run(tmp_path / "out")["gen"].to_list()}
    failed = [e for e in errors.values() if e]
    assert len(failed) == 3 and all("'Authorization': 'Bearer ***'" in e for e in failed)  # the echo reached the column
    assert_key_absent(tmp_path / "out", done.stdout, done.stderr)

    # A 401 stops the run at once, with the server's (echoing) message: redacted too.
    with FakeLLMServer(echo_headers=True, always="401") as server:
        done = cli("run", yaml_path, "--llm-base-url", server.base_url, "--llm-api-key-env", KEY_ENV,
                   "--out", tmp_path / "out401", "--no-progress", env={KEY_ENV: KEY})
    assert done.returncode == 2
    assert "HTTP 401 invalid api key" in one_line(done.stderr) and "Bearer ***" in done.stderr
    assert_key_absent(tmp_path / "out401", done.stdout, done.stderr)

    # An always-500 echoing server: the early-stop line is redacted.
    many = [{"id": f"b{i}", "instruction": f"q{i}"} for i in range(12)]
    with FakeLLMServer(echo_headers=True, always="500") as server:
        yaml_path = generation_yaml(tmp_path, server.base_url, many)
        done = cli("run", yaml_path, "--llm-base-url", server.base_url, "--llm-api-key-env", KEY_ENV,
                   "--llm-max-retries", "0", "--out", tmp_path / "out500", "--no-progress", env={KEY_ENV: KEY})
    assert done.returncode != 0 and "all failed: HTTP 500" in one_line(done.stderr)
    assert_key_absent(tmp_path / "out500", done.stdout, done.stderr)


def test_the_client_and_its_spec_never_show_the_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    client = OpenAICompatible(base_url="http://127.0.0.1:1/v1", model="m", api_key_env=KEY_ENV)
    assert KEY not in repr(client) and KEY not in str(client) and KEY not in str(vars(client))
    spec = parse_spec({"backend": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key_env": KEY_ENV})
    assert KEY not in repr(spec)
    assert client._redact(f"echo: Bearer {KEY}!") == "echo: Bearer ***!"
    assert redact("short ab", "ab") == "short ab"  # a too-short value is not a key worth blanking words for


# -- item 10: --llm-timeout / --llm-max-retries reach every LLM client --------------------------

def test_llm_timeout_reaches_the_client_and_fails_a_hang_fast(llm_server, cli, tmp_path):
    rows = [{"id": "ok", "instruction": "fine"}, {"id": "hang", "instruction": "[hang] forever"}]
    # A spec string (no --llm-base-url): expanded to its mapping, then the settings are set.
    yaml_path = generation_yaml(tmp_path, llm_server.base_url, rows)
    started = time.monotonic()
    done = cli("run", yaml_path, "--llm-timeout", "0.5", "--llm-max-retries", "1", "--out", tmp_path / "out", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    errors = {r["row_id"]: r["_error"] for r in load_run(tmp_path / "out")["gen"].to_list()}
    assert errors == {"ok": None, "hang": "gen: timed out after 0.5 s (2 attempts)"}
    assert llm_server.attempts["[hang] forever"] == 2

    # Connection settings are not part of fingerprints: other values recompute nothing.
    seen = len(llm_server.requests)
    done = cli("run", yaml_path, "--llm-timeout", "30", "--llm-max-retries", "4", "--out", tmp_path / "out", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert len(llm_server.requests) == seen


def test_llm_timeout_is_set_on_every_http_llm_of_a_recipe(llm_server):
    from notos.recipes import load_pipeline
    from notos.recipes.catalog import llm_options

    client = {"timeout": 7.5, "max_retries": 2}
    _, config = load_pipeline("ultrafeedback", ["rate.llm=http://127.0.0.1:9/v1"], llm_client=client)
    specs = [e[k] for e in config["steps"] for k in llm_options(e)]
    assert len(specs) == 8
    assert all(s["timeout"] == 7.5 and s["max_retries"] == 2 and s["backend"] == "openai" for s in specs)
    assert [s["model"] for s in specs][:2] == ["gpt-4o", "gpt-4o-mini"]  # openai:gpt-4o expanded, kept

    _, config = load_pipeline("ultrafeedback", [], llm_server={"base_url": llm_server.base_url, "model": None},
                              llm_client={"timeout": None, "max_retries": 0})
    specs = [e[k] for e in config["steps"] for k in llm_options(e)]
    assert all(s["base_url"] == llm_server.base_url and s["max_retries"] == 0 and "timeout" not in s for s in specs)


@pytest.mark.parametrize("args, culprit", [
    (["quickstart", "--llm-timeout", "5"], "--llm-timeout: no LLM of this pipeline talks to a server"),
    (["quickstart", "--llm-timeout", "0", "--llm-base-url", "http://127.0.0.1:9/v1"], "--llm-timeout must be a positive number"),
    (["quickstart", "--llm-max-retries", "-1"], "--llm-max-retries"),
])
def test_bad_llm_client_flags_are_one_line_errors(cli, tmp_path, args, culprit):
    done = cli("run", *args, "--dry-run", cwd=tmp_path)
    assert done.returncode == 2
    assert culprit in one_line(done.stderr)
