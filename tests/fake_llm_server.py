"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the tests, with fault modes.

It runs an aiohttp app on its own event loop in a background thread, so tests (and CLI
subprocesses) talk to it over real loopback HTTP. A fault is asked for inside the last user
message, so it follows the row whatever the concurrency:

    [500x2]        the first 2 requests with this text get HTTP 500, then it answers
    [429x1:ra=1]   the first request gets 429 with `Retry-After: 1`
    [hang] [hangx1] never answer (or only the first time) - the client must time out
    [badjson] [badjsonx2]  a 200 whose body is not JSON
    [empty]        a 200 whose message content is ""
    [400]          HTTP 400 with an error message (not worth retrying)
    [401]          HTTP 401
With `FakeLLMServer(echo_headers=True)` the 401 and 500 bodies repeat the request's headers
(Authorization included), as a careless proxy does: the 401 in its JSON error message, the 500
as plain text. `FakeLLMServer(always="500")` (or "401", "hang"...) gives every request that fault.
    [weird]        a 200 whose choices are not objects
    [ignore_n]     answers with one choice whatever `n` asked (as some servers do)
    [garble]       in a response to rate or critique: a greedy judge (temperature 0) garbles its
                   verdict ("Rating: N/A?", a critique with no score line); sampled, it reads
A rating prompt (texts in `<text N>` tags) gets one UltraFeedback section per text, rated with
the first `[d]` digit inside that text (3 when there is none): a test can tell which response
got which rating. A critique prompt gets feedback and `Overall score: 2d` the same way
(`[x]` in the response: no score line at all). The other task prompts get answers shaped the
same way, so tests can tell what went where:
    single judge (`[[N]]`)      `[[2d]]` from the answer's `[d]` (5 without one; `[x]`: no verdict)
    pairwise judge (`[[A]]`)    the answer with the higher `[d]` wins, equal is `[[C]]`;
                                `[pos]` in the question: always `[[A]]` (a position-biased judge)
    Self-Instruct / LaMini      a numbered list of the asked number of new tasks; a `[drop]` in
                                the examples marks task 1, a `[same]` task 2 (markers carry on)
    Evol-Instruct               the prompt with a constraint added; `[same]` in it: returned unchanged
    quality filter              `Verdict: KEEP` / `Score: 8`; `[drop]` in the response: DROP / 2
Otherwise it answers "Answer to: <text>" with usage counted in words.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import zlib
from collections import Counter

from aiohttp import web

FAULT = re.compile(r"\[(500|429|hang|badjson|empty|400|401|weird)(?:x(\d+))?(?::ra=(\d+))?\]")


class FakeLLMServer:
    def __init__(self, latency: float = 0.0, model: str = "fake-model", echo_headers: bool = False,
                 always: str | None = None, models: list[str] | None = None):
        self.latency, self.model = latency, model
        self.models = models or [model]  # what GET /models lists
        self.echo_headers, self.always = echo_headers, always
        self.attempts: Counter[str] = Counter()  # user text -> requests seen
        self.requests: list[dict] = []  # bodies, in arrival order
        self.headers: list[dict] = []
        self.arrivals: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake LLM server did not start")
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self):
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
        # Hanging handlers ([hang]) are still asleep: end them so nothing is left pending.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _models(self, request):
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

    async def _chat(self, request):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request):
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.arrivals.append(time.monotonic())
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        text = users[-1] if users else ""
        self.attempts[text] += 1
        seen = self.attempts[text]
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = FAULT.search(f"[{self.always}]" if self.always else text)
        if fault:
            kind, times, retry_after = fault.group(1), fault.group(2), fault.group(3)
            if times is None or seen <= int(times):
                response = await self._fault(kind, retry_after, dict(request.headers))
                if response is not None:
                    return response
        return web.json_response(self._completion(body, text))

    async def _fault(self, kind: str, retry_after: str | None, headers: dict):
        echoed = f" request headers: {headers}" if self.echo_headers else ""
        if kind == "500" and echoed:
            return web.Response(text=f"internal failure;{echoed}", status=500)
        if kind == "500":
            return web.json_response({"error": {"message": "internal failure"}}, status=500)
        if kind == "429":
            headers = {"Retry-After": retry_after} if retry_after else {}
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers=headers)
        if kind == "hang":
            await asyncio.sleep(3600)
        if kind == "badjson":
            return web.Response(text='{"choices": [ {"message": tru', content_type="application/json")
        if kind == "400":
            return web.json_response({"error": {"message": "prompt is too long for this model"}}, status=400)
        if kind == "401":
            return web.json_response({"error": {"message": f"invalid api key{echoed}"}}, status=401)
        if kind == "weird":
            return web.json_response({"choices": ["x"], "usage": {}})
        return None  # "empty" is shaped in _completion

    def _completion(self, body: dict, text: str) -> dict:
        n = 1 if "[ignore_n]" in text else body.get("n", 1)
        answer = "" if "[empty]" in text else f"Answer to: {text}"
        greedy = not body.get("temperature")
        if "<text 1>" in text:
            answer = _rate_texts(text, greedy)
        elif "<response>" in text and "Overall score" in text:
            answer = _critique(text, greedy)
        else:
            answer = _task_answer(text) or answer
        if body.get("continue_final_message"):
            answer = body["messages"][-1]["content"] + "4"
        choices = []
        for i in range(n):
            choice = {"index": i, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            if body.get("logprobs"):
                top = [{"token": t, "logprob": lp} for t, lp in ((" 4", -0.2), ("5", -1.9), ("3", -2.5), ("Rating", -4.0))]
                choice["logprobs"] = {"content": [{"token": "4", "logprob": -0.2, "top_logprobs": top[: body.get("top_logprobs", 0)]}]}
            choices.append(choice)
        prompt_words = sum(len(str(m["content"]).split()) for m in body["messages"])
        return {
            "id": "cmpl-test", "object": "chat.completion", "model": body.get("model"),
            "choices": choices,
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(answer.split()) * n,
                      "total_tokens": prompt_words + len(answer.split()) * n},
        }


def _rate_texts(prompt: str, greedy: bool = True) -> str:
    sections = []
    for number, body in re.findall(r"<text (\d+)>\n(.*?)\n</text \1>", prompt, re.S):
        digit = re.search(r"\[(\d)\]", body)
        rating = digit.group(1) if digit else "3"
        if greedy and "[garble]" in body:
            rating = "N/A?"
        sections.append(f"#### Output for Text {number}\nRating: {rating}\nRationale: rated {rating} for text {number}.")
    return "\n\n".join(sections)


def _critique(prompt: str, greedy: bool = True) -> str:
    body = prompt.split("<response>\n", 1)[1].split("\n</response>", 1)[0]
    if "[x]" in body or (greedy and "[garble]" in body):
        return "Feedback: hard to say."
    digit = re.search(r"\[(\d)\]", body)
    score = 2 * int(digit.group(1)) if digit else 5
    return f"Feedback: the response '{body[:20]}' could be clearer.\nOverall score: {score}"


def _digit(text: str) -> int | None:
    found = re.search(r"\[(\d)\]", text)
    return int(found.group(1)) if found else None


def _block(prompt: str, tag: str) -> str:
    found = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", prompt, re.S)
    return found.group(1) if found else ""


def _task_answer(prompt: str) -> str | None:
    """Answers for the judge, synthesis and quality prompts (see the module docstring)."""
    if "[[A]], [[B]] or [[C]]" in prompt:
        if "[pos]" in _block(prompt, "question"):
            return "A reads better. [[A]]"
        a, b = _digit(_block(prompt, "answer_A")) or 0, _digit(_block(prompt, "answer_B")) or 0
        return "Compared. " + ("[[A]]" if a > b else "[[B]]" if b > a else "[[C]]")
    if "verdict as [[N]]" in prompt:
        multi_turn = re.search(r'<assistant[^>]*graded="yes">\n(.*?)\n</assistant>', prompt, re.S)
        graded = multi_turn.group(1) if multi_turn else _block(prompt, "answer")
        if "[x]" in graded:
            return "I cannot decide."
        digit = _digit(graded)
        return f"Assessed. [[{2 * digit if digit else 5}]]"
    asked = re.search(r"(?:Invent|Write) (\d+) new", prompt)
    if asked:
        tag = zlib.crc32(prompt.encode()) % 10_000  # distinct per prompt, stable across runs
        carried = {1: " [drop]" if "[drop]" in prompt else "", 2: " [same]" if "[same]" in prompt else ""}
        return "\n".join(f"{k}. Describe subject {tag}-{k} in three short sentences.{carried.get(k, '')}"
                         for k in range(1, int(asked.group(1)) + 1))
    if "#Rewritten Prompt#:" in prompt or "#Created Prompt#:" in prompt:
        given = prompt.split("#Given Prompt#:\n", 1)[1].split("\n\nReply with", 1)[0]
        return given if "[same]" in given else f"{given} Answer in exactly three numbered steps and cite one example."
    if "Verdict: KEEP or Verdict: DROP" in prompt:
        response = prompt.split("[Response]\n", 1)[1]
        if "[drop]" in response:
            return "Reason: the response does not address the instruction.\nVerdict: DROP\nScore: 2"
        return "Reason: clear, correct and complete.\nVerdict: KEEP\nScore: 8"
    return None
