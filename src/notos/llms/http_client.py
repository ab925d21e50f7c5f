"""OpenAI-compatible chat completions over plain HTTP/1.1: OpenAI, vLLM serve, TGI, llama.cpp
server, Ollama.

Why not the `openai` SDK: it costs ~2.4 ms of CPU per request here (pydantic models, httpx),
which caps a 2-core machine at a few hundred requests per second. Nor aiohttp's ClientSession:
keep-alive connections and plain JSON bytes (http_wire.py) make the whole client ~95 us of CPU
a request where aiohttp made it ~150, on the event loop that also runs the pipeline.

Retries: 429, 5xx, timeouts, connection errors and malformed bodies are retried with
exponential backoff and full jitter, honouring Retry-After. A request that still fails marks
only its own conversation failed. Credentials or model errors (401/403/404) fail the run at
once with one line, since every row would fail the same way; so do the first
FAILURES_TO_STOP requests all failing (after their retries) for the same reason before any
answer came back (connection refused, an unknown host, the same HTTP status, the same refusal):
a dead server or a wrong URL stops the run in seconds instead of failing every row.

Secrets: the key is read from its environment variable when a session opens and is never
kept on the client; every error text built from a response (body, headers, exception text)
has the key's value replaced by '***' before it is raised, stored or printed.
"""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import urlparse

from notos.errors import NotosError
from notos.llms.http_wire import Pool, WireError
from notos.llms.limits import MAX_RETRY_AFTER, RETRIABLE_STATUS, RequestPacer, backoff_delay, parse_retry_after
from notos.llms.types import CandidateScores, Conversation, Generation, GenerationParams, match_candidates, per_conversation

OPENAI_URL = "https://api.openai.com/v1"
TOP_LOGPROBS = 20  # the most OpenAI returns; enough to find "1".."5" after a forced prefix
MAX_REASON = 300
FAILURES_TO_STOP = 8  # identical failures (after retries), before any answer, that stop the run
REDACTED = "***"


class RequestFailed(Exception):
    def __init__(self, reason: str, retriable: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retriable, self.retry_after = reason, retriable, retry_after


class OpenAICompatible:
    def __init__(
        self,
        model: str = "auto",
        base_url: str = OPENAI_URL,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        max_concurrency: int = 128,
        rpm: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        prefill: bool = False,
        extra_body: dict | None = None,
    ):
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise NotosError(f"llm (openai): base_url {base_url!r} is not an http(s) URL")
        try:
            parsed.port  # noqa: B018 - raises on a port out of range, once here rather than per row
        except ValueError:
            raise NotosError(f"llm (openai): base_url {base_url!r} has no valid port") from None
        numbers = {"timeout": timeout, "max_concurrency": max_concurrency, "max_retries": max_retries,
                   "backoff_base": backoff_base, "backoff_max": backoff_max, "rpm": rpm}
        for name, value in numbers.items():
            if name == "rpm" and value is None:
                continue
            positive = name not in ("max_retries",)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (positive and value == 0):
                raise NotosError(f"llm (openai): option '{name}' must be a {'positive' if positive else 'non-negative'} number, got {value!r}")
        if not isinstance(model, str) or not model:
            raise NotosError(f"llm (openai): option 'model' must be a model name, got {model!r}")
        if extra_body is not None and not isinstance(extra_body, dict):
            raise NotosError("llm (openai): option 'extra_body' must be a mapping")
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        # Only send a key where the user asked for one: a local server never gets the
        # OpenAI key just because it is in the environment.
        self.api_key_env = api_key_env or ("OPENAI_API_KEY" if parsed.hostname == "api.openai.com" else None)
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.max_concurrency = int(max_concurrency)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.prefill, self.extra_body = bool(prefill), dict(extra_body or {})
        # OpenAI's reasoning models refuse `max_tokens`; its newer name works for all of them.
        self.max_tokens_field = "max_completion_tokens" if parsed.hostname == "api.openai.com" else "max_tokens"
        self.pacer = RequestPacer(rpm)
        self.retries = 0  # attempts beyond the first, for tests and stats
        self.answered = 0  # requests that got a usable reply
        self.refusals: dict[str, int] = {}  # a 4xx reason -> how many requests got it
        self.stopped: str | None = None  # why the run was stopped early: requests still queued stop too
        self.reached = False  # the server has answered once (until then, few requests go out at a time)
        self._probing = 0  # requests out while the server has not answered yet
        self._pool: Pool | None = None
        self._gate: asyncio.Semaphore | None = None
        self._loop = None
        self._model_lock: asyncio.Lock | None = None

    # -- connections (one pool per event loop: connections belong to the loop that made them) --
    def _ensure_pool(self) -> Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            headers = {"Content-Type": "application/json"}
            key = self._api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._pool = Pool(self.base_url, headers)
            self._gate = asyncio.Semaphore(self.max_concurrency)
            self._model_lock = asyncio.Lock()
            self._loop = loop
        return self._pool

    def __repr__(self) -> str:
        return f"OpenAICompatible(model={self.model_name!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def _redact(self, text: str) -> str:
        """`text` with the value of the key this client sends replaced by '***' (a server may
        echo the Authorization header in an error body)."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return redact(redact(text, key), key.strip() if key else None)  # as sent: stripped (see _api_key)

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise NotosError(f"llm (openai at {self.base_url}): environment variable {self.api_key_env} is not set")
        key = key.strip()  # a .env file written on Windows leaves a \r at the end
        if any(c in key for c in "\r\n") or not key.isascii():
            raise NotosError(f"llm (openai at {self.base_url}): the key in ${self.api_key_env} has line breaks or non-ASCII "
                             "characters inside it; it cannot go into an HTTP header")
        return key

    async def close(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = None
        self.stopped = None  # the next run (in this process) tries the server afresh

    # -- one request, with retries --------------------------------------------------------
    async def _post_once(self, path: str, body: bytes) -> dict:
        pool = self._ensure_pool()
        async with self._gate:
            if self.stopped:  # queued behind the requests that stopped the run: never sent
                raise NotosError(self.stopped)
            # The pace is kept inside the gate: requests that got their turn while the gate
            # was full would otherwise start together as soon as it opens.
            await self.pacer.wait_turn()
            try:
                response = await pool.request("POST", path, body, self.timeout)
            except TimeoutError:
                raise RequestFailed(f"timed out after {self.timeout:g} s", True) from None
            except (WireError, OSError) as exc:
                raise RequestFailed(self._redact(f"connection error: {type(exc).__name__}: {exc}"), True) from None
        raw, status = response.body, response.status
        if status != 200:
            message = _server_message(self._redact(raw.decode("utf-8", "replace")))
            if status in (401, 403):
                hint = f" (key from ${self.api_key_env})" if self.api_key_env else " (no key sent: set api_key_env)"
                raise NotosError(f"llm (openai at {self.base_url}): HTTP {status} {message}{hint}")
            if status == 404:
                raise NotosError(f"llm (openai at {self.base_url}): HTTP 404 {message} (check base_url and model {self.model_name!r})")
            if 300 <= status < 400:  # redirects are not followed: a POST must not land somewhere unasked
                where = response.headers.get("location", "")
                raise NotosError(f"llm (openai at {self.base_url}): HTTP {status}: the server redirects to "
                                 f"{self._redact(where)[:200] or 'another address'}; set base_url to where it points")
            raise RequestFailed(f"HTTP {status} {message}".strip(), status in RETRIABLE_STATUS, _retry_after(response.headers))
        try:
            data = json.loads(raw)
        except ValueError:
            raise RequestFailed(f"malformed JSON in the response: {self._redact(raw.decode('utf-8', 'replace'))[:80]!r}", True) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise RequestFailed(f"response without choices: {self._redact(raw.decode('utf-8', 'replace'))[:80]!r}", True)
        return data

    async def _post(self, path: str, payload: dict) -> dict:
        body = json.dumps(payload).encode()
        probing = await self._admit()
        try:
            return await self._post_with_retries(path, body)
        finally:
            self._probing -= probing

    async def _admit(self) -> bool:
        """Until the server has answered once, at most FAILURES_TO_STOP requests are out at a time
        (retries included): a dead or broken server stops the run after a handful of requests,
        not after a whole batch's worth. The first answer opens the way for every request."""
        while not self.reached and self._probing >= FAILURES_TO_STOP and not self.stopped:
            await asyncio.sleep(0.005)
        if self.stopped:
            raise NotosError(self.stopped)
        if self.reached:
            return False
        self._probing += 1
        return True

    async def _post_with_retries(self, path: str, body: bytes) -> dict:
        attempt = 0
        while True:
            try:
                data = await self._post_once(path, body)
                self.reached = True
                return data
            except RequestFailed as failure:
                if not failure.retriable or attempt >= self.max_retries:
                    tries = f" ({attempt + 1} attempts)" if attempt else ""
                    raise RequestFailed(failure.reason[:MAX_REASON] + tries, False) from None
                delay = backoff_delay(attempt, self.backoff_base, self.backoff_max)
                if failure.retry_after is not None:
                    delay = max(delay, failure.retry_after)
                if failure.retry_after is not None or failure.reason.startswith("HTTP 429"):
                    self.pacer.pause_for(delay)  # the server is overloaded: hold every request, not just this one
                attempt += 1
                self.retries += 1
                await asyncio.sleep(delay)

    async def _resolve_model(self) -> None:
        """model "auto": ask the server which model it serves (vLLM, llama.cpp serve one)."""
        if self.model_name != "auto":
            return
        pool = self._ensure_pool()
        async with self._model_lock:
            if self.model_name != "auto":
                return
            try:
                response = await pool.request("GET", "/models", timeout=self.timeout)
                self.model_name = json.loads(response.body)["data"][0]["id"]
            except Exception as exc:  # noqa: BLE001 - any failure means the same advice
                raise NotosError(
                    f"llm (openai at {self.base_url}): cannot list the server's models ({type(exc).__name__}); give the model name (--llm-model or model:)"
                ) from None

    # -- the LLM interface ----------------------------------------------------------------
    async def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Generation]:
        await self._resolve_model()
        return await all_or_stop([self._generate_one(c, params) for c in conversations])

    async def _generate_one(self, conversation: Conversation, params: GenerationParams) -> Generation:
        try:
            generation = _parse_generation(await self._post("/chat/completions", self._payload(conversation, params)))
            self.answered += 1
            return generation
        except RequestFailed as failure:
            self._check_failures(failure.reason)
            return Generation(error=failure.reason)
        except NotosError:
            raise
        except Exception as exc:  # noqa: BLE001 - an odd reply fails its own row, never the batch
            return Generation(error=self._redact(f"unreadable response: {type(exc).__name__}: {exc}")[:MAX_REASON])

    def _check_failures(self, reason: str) -> None:
        """Every request failing the same way before any answer (a dead server, a wrong URL, a
        server answering only 500, a parameter this model does not take) is a configuration
        error or an outage: stop instead of failing every row of a long run one by one."""
        if self.answered:
            return
        kind = failure_kind(reason)
        self.refusals[kind] = self.refusals.get(kind, 0) + 1
        if self.refusals[kind] >= FAILURES_TO_STOP:
            verb = "were all refused" if reason.startswith("HTTP 4") else "all failed"
            self.stopped = (f"llm (openai at {self.base_url}): the first {FAILURES_TO_STOP} requests {verb}: {reason}"
                             " (stopped early: no request got an answer; is the server up and the URL right? On"
                             " --retry-failed, rows that keep failing this way fail for a reason of their own)")
            raise NotosError(self.stopped)

    def _payload(self, conversation: Conversation, params: GenerationParams) -> dict:
        payload = {
            **self.extra_body,
            "model": self.model_name,
            "messages": conversation,
            self.max_tokens_field: params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.n != 1:
            payload["n"] = params.n
        if params.stop:
            payload["stop"] = list(params.stop)
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.logprobs:
            payload["logprobs"] = True
        if params.json_schema is not None:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": params.json_schema, "strict": True},
            }
        return payload

    async def score_candidates(self, conversations: list[Conversation], candidates: list[str], prefix: str | list[str] = "") -> list[CandidateScores]:
        prefixes = per_conversation(prefix, len(conversations))
        if any(prefixes) and not self.prefill:
            raise NotosError(
                f"llm (openai at {self.base_url}): scoring after a forced prefix needs a server that continues an assistant message "
                "(vLLM, llama.cpp server): set prefill: true; OpenAI itself cannot, so rate with free text there"
            )
        await self._resolve_model()
        return await all_or_stop([self._score_one(c, candidates, p) for c, p in zip(conversations, prefixes)])

    async def _score_one(self, conversation: Conversation, candidates: list[str], prefix: str) -> CandidateScores:
        messages = list(conversation)
        payload = {**self.extra_body, "model": self.model_name, self.max_tokens_field: 1, "temperature": 0,
                   "logprobs": True, "top_logprobs": TOP_LOGPROBS}
        if prefix:
            messages.append({"role": "assistant", "content": prefix})
            payload.update({"continue_final_message": True, "add_generation_prompt": False})
        payload["messages"] = messages
        try:
            data = await self._post("/chat/completions", payload)
        except RequestFailed as failure:
            self._check_failures(failure.reason)
            return CandidateScores(error=failure.reason)
        self.answered += 1
        try:
            top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            pairs = [(str(t.get("token", "")), float(t["logprob"])) for t in top if t.get("logprob") is not None]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return CandidateScores(error="the server returned no usable top_logprobs")
        return CandidateScores(logprobs=match_candidates(pairs, candidates))


async def all_or_stop(coroutines: list) -> list:
    """Run one request per row; a run-stopping error (bad key, unknown model) cancels the
    others at once instead of letting them all hit the same wall."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coroutines]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [t.result() for t in tasks]


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every secret's value replaced by '***'."""
    for secret in secrets:
        if secret and len(secret) >= 4:  # a 1-3 character "key" would blank ordinary words
            text = text.replace(secret, REDACTED)
    return text


def failure_kind(reason: str) -> str:
    """What makes failures "the same": the HTTP status, the connection error's type, else the
    reason without its attempt count."""
    if reason.startswith("HTTP "):
        return reason.split(" ", 2)[1] if reason.startswith("HTTP 5") else reason.rsplit(" (", 1)[0]
    if reason.startswith("connection error: "):
        return reason.split(":", 2)[1].strip()
    return reason.rsplit(" (", 1)[0]


def _retry_after(headers) -> float | None:
    """Retry-After, or OpenAI/Azure's retry-after-ms, in seconds (header names in any case)."""
    headers = {name.lower(): value for name, value in headers.items()}
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return min(max(float(millis) / 1000, 0.0), MAX_RETRY_AFTER)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def _parse_generation(data: dict) -> Generation:
    texts, reasons, logprobs = [], [], []
    for choice in sorted(data["choices"], key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0):
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        texts.append(content if isinstance(content, str) else "")
        reasons.append(str(choice.get("finish_reason") or "unknown"))
        entries = ((choice.get("logprobs") or {}).get("content")) or []
        logprobs.append([(e.get("token", ""), float(e.get("logprob", 0.0))) for e in entries])
    usage = data.get("usage") or {}
    return Generation(
        texts=texts,
        finish_reasons=reasons,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        token_logprobs=logprobs if any(logprobs) else None,
    )


def _server_message(raw: bytes | str) -> str:
    """The error message a server put in its body, in one short line."""
    try:
        data = json.loads(raw)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", "") if isinstance(error, dict) else str(error)
    except ValueError:
        message = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    return " ".join(str(message).split())[:200]



def served_models(base_url: str, api_key_env: str | None = None, timeout: float = 10.0) -> list[str]:
    """The model names an OpenAI-compatible server lists (GET /models), asked once before a run
    so that `pipeline.yaml` records the model each step will use instead of `auto`. The key, if
    any, goes only into the request header."""
    import urllib.request

    request = urllib.request.Request(base_url.rstrip("/") + "/models")
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            names = [str(m["id"]) for m in json.loads(response.read())["data"]]
    except Exception as exc:  # noqa: BLE001 - any failure means the same advice
        raise NotosError(f"--llm-base-url {base_url}: cannot list the server's models ({type(exc).__name__}); "
                         "is the server up? (or give the model name with --llm-model)") from None
    if not names:
        raise NotosError(f"--llm-base-url {base_url}: the server lists no models; give one with --llm-model")
    return names
