"""The OpenAI-compatible client against a real HTTP server on loopback, fault modes included."""

import asyncio
import time

import pytest

from notos.errors import NotosError
from notos.llms.http_client import OpenAICompatible
from notos.llms.types import GenerationParams


def ask(*texts):
    return [[{"role": "user", "content": t}] for t in texts]


def generate(client, conversations, **params):
    async def go():
        try:
            return await client.generate(conversations, GenerationParams(**params))
        finally:
            await client.close()

    return asyncio.run(go())


def client_for(server, **options):
    options.setdefault("backoff_base", 0.01)
    options.setdefault("model", "m1")
    return OpenAICompatible(base_url=server.base_url, **options)


def test_answers_usage_and_finish_reasons(llm_server):
    outs = generate(client_for(llm_server), ask("one two", "three"), max_new_tokens=16, temperature=0)
    assert [o.texts for o in outs] == [["Answer to: one two"], ["Answer to: three"]]
    assert [o.finish_reasons for o in outs] == [["stop"], ["stop"]]
    assert [(o.prompt_tokens, o.completion_tokens) for o in outs] == [(2, 4), (1, 3)]
    body = llm_server.requests[0]
    assert body["model"] == "m1" and body["max_tokens"] == 16 and body["temperature"] == 0
    assert "n" not in body and "seed" not in body


def test_sampling_params_reach_the_server(llm_server):
    outs = generate(client_for(llm_server), ask("x"), n=3, seed=7, stop=["\n\n"], top_p=0.9, logprobs=True,
                    json_schema={"type": "object"})
    body = llm_server.requests[0]
    assert body["n"] == 3 and body["seed"] == 7 and body["stop"] == ["\n\n"] and body["top_p"] == 0.9
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert len(outs[0].texts) == 3 and outs[0].completion_tokens == 9
    assert outs[0].token_logprobs == [[("4", -0.2)]] * 3


def test_500s_are_retried_then_answered(llm_server):
    client = client_for(llm_server)
    outs = generate(client, ask("[500x2] hello", "fine"))
    assert outs[0].error is None and outs[0].texts == ["Answer to: [500x2] hello"]
    assert llm_server.attempts["[500x2] hello"] == 3 and client.retries == 2


def test_a_failing_request_fails_only_its_row(llm_server):
    client = client_for(llm_server, max_retries=2)
    outs = generate(client, ask("a", "[500] always broken", "b", "[400] too long", "c"))
    assert [o.error is None for o in outs] == [True, False, True, False, True]
    assert outs[1].error == "HTTP 500 internal failure (3 attempts)"
    assert llm_server.attempts["[500] always broken"] == 3
    # A 400 is the request's own fault: retrying would not help.
    assert outs[3].error == "HTTP 400 prompt is too long for this model"
    assert llm_server.attempts["[400] too long"] == 1
    assert sum(o.completion_tokens for o in outs) == 3 * 3


def test_retry_after_is_honoured(llm_server):
    client = client_for(llm_server, backoff_base=0.001, backoff_max=0.001)
    started = time.monotonic()
    outs = generate(client, ask("[429x1:ra=1] wait"))
    assert outs[0].error is None and llm_server.attempts["[429x1:ra=1] wait"] == 2
    gap = llm_server.arrivals[1] - llm_server.arrivals[0]
    assert gap >= 0.95, gap  # the backoff alone would have been ~1 ms
    assert time.monotonic() - started < 5


def test_hanging_requests_time_out(llm_server):
    client = client_for(llm_server, timeout=0.4, max_retries=1)
    started = time.monotonic()
    outs = generate(client, ask("[hang] stuck", "[hangx1] once", "ok"))
    assert outs[0].error == "timed out after 0.4 s (2 attempts)"
    assert outs[1].error is None and outs[1].texts == ["Answer to: [hangx1] once"]
    assert outs[2].error is None
    assert time.monotonic() - started < 3


def test_malformed_json_is_retried_then_reported(llm_server):
    client = client_for(llm_server, max_retries=1)
    outs = generate(client, ask("[badjsonx1] glitch", "[badjson] broken"))
    assert outs[0].error is None and llm_server.attempts["[badjsonx1] glitch"] == 2
    assert outs[1].error.startswith("malformed JSON in the response") and outs[1].error.endswith("(2 attempts)")


def test_empty_content_is_returned_as_empty_text(llm_server):
    outs = generate(client_for(llm_server), ask("[empty] nothing"))
    assert outs[0].error is None and outs[0].texts == [""] and outs[0].finish_reasons == ["stop"]


def test_bad_credentials_stop_the_run_without_showing_the_key(llm_server, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-very-secret-value")
    client = client_for(llm_server, api_key_env="MY_TEST_KEY")
    with pytest.raises(NotosError) as info:
        generate(client, ask("[401] who are you"))
    assert "HTTP 401 invalid api key" in str(info.value) and "MY_TEST_KEY" in str(info.value)
    assert "sk-very-secret" not in str(info.value)
    assert llm_server.headers[0]["Authorization"] == "Bearer sk-very-secret-value"


def test_a_missing_key_variable_is_one_clear_error(llm_server):
    client = client_for(llm_server, api_key_env="NOTOS_TEST_UNSET_KEY")
    with pytest.raises(NotosError, match="environment variable NOTOS_TEST_UNSET_KEY is not set"):
        generate(client, ask("x"))


def test_a_key_with_a_trailing_line_break_is_sent_without_it(llm_server, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-written-on-windows\r\n")
    generate(client_for(llm_server, api_key_env="MY_TEST_KEY"), ask("x"))
    assert llm_server.headers[0]["Authorization"] == "Bearer sk-written-on-windows"


def test_a_key_with_a_line_break_inside_is_one_clear_error_without_the_key(llm_server, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-first\nX-Injected: yes")
    with pytest.raises(NotosError, match=r"MY_TEST_KEY has line breaks") as info:
        generate(client_for(llm_server, api_key_env="MY_TEST_KEY"), ask("x"))
    assert "sk-first" not in str(info.value) and not llm_server.headers


def test_a_redirect_is_one_error_naming_where_it_points():
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://llm.example/v1/chat/completions\r\n"
                     b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        client = OpenAICompatible(base_url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", model="m")
        try:
            return await client.generate(ask("x"), GenerationParams())
        finally:
            await client.close()
            server.close()

    with pytest.raises(NotosError, match="HTTP 308: the server redirects to https://llm.example/v1/chat/completions"):
        asyncio.run(main())


def test_no_key_is_sent_to_a_server_that_did_not_ask_for_one(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-travel")
    generate(client_for(llm_server), ask("x"))
    assert "Authorization" not in llm_server.headers[0]


def test_concurrency_limit(llm_server):
    llm_server.latency = 0.1
    generate(client_for(llm_server, max_concurrency=3), ask(*[f"q{i}" for i in range(12)]))
    assert llm_server.max_in_flight == 3


def test_requests_per_minute_limit(llm_server):
    generate(client_for(llm_server, rpm=600), ask(*[f"q{i}" for i in range(5)]))
    gaps = [b - a for a, b in zip(llm_server.arrivals, llm_server.arrivals[1:])]
    assert min(gaps) >= 0.08, gaps  # 600 rpm = one start every 0.1 s


def test_model_auto_asks_the_server(llm_server):
    client = client_for(llm_server, model="auto")
    generate(client, ask("x"))
    assert client.model_name == "fake-model" and llm_server.requests[0]["model"] == "fake-model"


def test_candidate_scores_with_prefill(llm_server):
    client = client_for(llm_server, prefill=True)

    async def go():
        try:
            return await client.score_candidates(ask("rate this"), ["1", "2", "3", "4", "5"], prefix="Rating: ")
        finally:
            await client.close()

    [scores] = asyncio.run(go())
    body = llm_server.requests[0]
    assert body["messages"][-1] == {"role": "assistant", "content": "Rating: "} and body["continue_final_message"]
    assert body["max_tokens"] == 1 and body["top_logprobs"] == 20
    assert scores.logprobs == {"1": None, "2": None, "3": -2.5, "4": -0.2, "5": -1.9}
    assert abs(sum(scores.probs.values()) - 1) < 1e-9 and scores.best() == "4"
    assert 3.9 < scores.expected() < 4.3


def test_a_forced_prefix_needs_prefill(llm_server):
    client = client_for(llm_server)
    with pytest.raises(NotosError, match="prefill: true"):
        asyncio.run(client.score_candidates(ask("rate"), ["1", "2"], prefix="Rating: "))


@pytest.mark.parametrize("options, message", [
    ({"base_url": "ftp://x"}, r"base_url 'ftp://x' is not an http\(s\) URL"),
    ({"base_url": "http://127.0.0.1:1/v1", "timeout": 0}, "option 'timeout'"),
    ({"base_url": "http://127.0.0.1:1/v1", "max_concurrency": 0}, "option 'max_concurrency'"),
    ({"base_url": "http://127.0.0.1:99999/v1"}, "has no valid port"),
])
def test_bad_options(options, message):
    with pytest.raises(NotosError, match=message):
        OpenAICompatible(**options)


def test_unreachable_server_fails_rows_not_the_process():
    client = OpenAICompatible(base_url="http://127.0.0.1:9/v1", model="m", max_retries=1, backoff_base=0.01)
    outs = generate(client, ask("x", "y"))
    assert all(o.error.startswith("connection error") for o in outs)


def test_an_unreadable_reply_fails_its_row_and_nothing_is_sent_twice(llm_server):
    outs = generate(client_for(llm_server), ask("a", "[weird] odd", "b"))
    assert outs[1].error.startswith("unreadable response")
    assert outs[0].error is None and outs[2].error is None
    assert dict(llm_server.attempts) == {"a": 1, "[weird] odd": 1, "b": 1}


def test_a_bad_key_cancels_the_other_requests(llm_server, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-x")
    llm_server.latency = 0.2
    client = client_for(llm_server, api_key_env="MY_TEST_KEY", max_concurrency=2)
    with pytest.raises(NotosError, match="HTTP 401"):
        generate(client, ask("[401] no", *[f"q{i}" for i in range(20)]))
    time.sleep(0.5)
    assert len(llm_server.requests) <= 3  # the first wave only; the other 18 were never sent


def test_a_row_backing_off_does_not_hold_a_concurrency_slot(llm_server, monkeypatch):
    from notos.llms import http_client

    monkeypatch.setattr(http_client, "backoff_delay", lambda *args, **kwargs: 0.5)
    generate(client_for(llm_server, max_concurrency=1), ask("[500x1] first", "second"))
    order = [b["messages"][-1]["content"] for b in llm_server.requests]
    assert order == ["[500x1] first", "second", "[500x1] first"]


def test_requests_per_minute_hold_under_contention(llm_server):
    llm_server.latency = 0.3
    generate(client_for(llm_server, rpm=600, max_concurrency=2), ask(*[f"q{i}" for i in range(6)]))
    gaps = [b - a for a, b in zip(llm_server.arrivals, llm_server.arrivals[1:])]
    assert min(gaps) >= 0.08, gaps  # no burst when the gate reopens


def test_retry_after_in_milliseconds():
    from notos.llms.http_client import _retry_after

    assert _retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert _retry_after({"Retry-After": "2"}) == 2.0
    assert _retry_after({}) is None


@pytest.mark.parametrize("options, message", [
    ({"rpm": "fast"}, "option 'rpm'"),
    ({"backoff_base": "0.5"}, "option 'backoff_base'"),
    ({"model": ""}, "option 'model'"),
])
def test_bad_option_values(options, message):
    with pytest.raises(NotosError, match=message):
        OpenAICompatible(base_url="http://127.0.0.1:1/v1", **options)


def test_a_server_refusing_every_request_stops_the_run(llm_server):
    client = client_for(llm_server, max_concurrency=2)
    with pytest.raises(NotosError, match=r"the first 8 requests were all refused: HTTP 400 prompt is too long"):
        generate(client, ask(*[f"[400] q{i}" for i in range(40)]))
    assert len(llm_server.requests) < 15


def test_some_refusals_among_answers_only_fail_their_rows(llm_server):
    outs = generate(client_for(llm_server, max_concurrency=1), ask("fine", *[f"[400] q{i}" for i in range(12)]))
    assert outs[0].error is None and all(o.error.startswith("HTTP 400") for o in outs[1:])


def test_a_bare_local_path_is_a_spec(tmp_path):
    from notos.errors import NotosError
    from notos.llms.spec import parse_spec

    (tmp_path / "run" / "merged").mkdir(parents=True)
    (tmp_path / "run" / "merged" / "config.json").write_text("{}")
    assert parse_spec(str(tmp_path / "run")) == {"backend": "transformers", "model": str(tmp_path / "run" / "merged")}
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert parse_spec(str(tmp_path / "m.gguf"))["backend"] == "llamacpp"
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "adapter_config.json").write_text("{}")
    with pytest.raises(NotosError, match="merge=true"):
        parse_spec(str(tmp_path / "lora"))
    with pytest.raises(NotosError, match="cannot read spec"):
        parse_spec(str(tmp_path / "nowhere"))
