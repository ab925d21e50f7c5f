"""llama-cpp-python backend: a local GGUF model on the CPU (extra `llamacpp`).

    llm = build_llm({"backend": "llamacpp", "model": "embedded"})   # or a path to a .gguf file

llama.cpp's Python binding has no batched generation and one `Llama` object is not safe to
use from two threads, so conversations run one after another in a worker thread under a lock.

Each call starts from an empty KV cache (`reset()`): llama.cpp's numbers depend on how the
prompt is split into decode batches, so re-using the previous call's cached prefix changes the
logprobs (by ~0.05 here) and seeded samples, and results would depend on the order of rows.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from notos.errors import NotosError, require_extra
from notos.llms.embedded import EMBEDDED_NAME, embedded_gguf
from notos.llms.hf_local import default_threads
from notos.llms.types import CandidateScores, Conversation, Generation, GenerationParams, match_candidates, per_conversation

SCORE_TOP_LOGPROBS = 40  # how many first-token alternatives score_candidates looks at


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class LlamaCppLLM:
    def __init__(self, model: str, n_ctx: int = 2048, threads: int | None = None, chat_format: str | None = None, verbose: bool = False):
        llama_cpp = require_extra("llama_cpp", "llamacpp")
        if model == "embedded":
            path, self.model_name = embedded_gguf(), EMBEDDED_NAME
        else:
            path = Path(model).expanduser()
            self.model_name = path.stem
        if not path.is_file():
            raise NotosError(f"llm (llamacpp): model file not found: {path}")
        threads = threads or default_threads()
        try:
            # logits_all: llama-cpp-python refuses logprobs without it and score_candidates reads
            # the logits it keeps; it costs n_ctx x n_vocab floats (400 MB here) and ~5% speed.
            self.llama = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                chat_format=chat_format, logits_all=True, verbose=verbose,
            )
        except (ValueError, RuntimeError) as exc:
            raise NotosError(f"llm (llamacpp): cannot load {path}: {exc}") from None
        self._lock = threading.Lock()  # a threading lock: the instance is shared across event loops
        # A worker of its own: batches waiting for the model must not fill the loop's default pool.
        self._worker = ThreadPoolExecutor(1)
        self._formatter = None

    # -- generation ---------------------------------------------------------------------------

    async def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Generation]:
        return [await asyncio.get_running_loop().run_in_executor(self._worker, self._generate_one, conv, params) for conv in conversations]

    def _generate_one(self, conv: Conversation, params: GenerationParams) -> Generation:
        out = Generation(token_logprobs=[] if params.logprobs else None)
        try:
            for i in range(params.n):
                with self._lock:
                    self.llama.reset()
                    resp = self.llama.create_chat_completion(messages=conv, **self._chat_kwargs(params, i))
                choice = resp["choices"][0]
                out.texts.append(choice["message"]["content"] or "")
                out.finish_reasons.append(choice["finish_reason"] or "stop")
                out.prompt_tokens = resp["usage"]["prompt_tokens"]
                out.completion_tokens += resp["usage"]["completion_tokens"]
                if params.logprobs:
                    content = (choice.get("logprobs") or {}).get("content") or []
                    out.token_logprobs.append([(t["token"], float(t["logprob"])) for t in content])  # numpy floats
        except Exception as exc:  # one conversation's failure never fails the batch
            return Generation(error=error_text(exc))
        return out

    @staticmethod
    def _chat_kwargs(params: GenerationParams, i: int) -> dict:
        kwargs = dict(
            max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
            stop=list(params.stop),
            # llama.cpp's defaults (top_k=40, min_p=0.05) would silently narrow sampling compared
            # with the other backends, which sample from the plain temperature/top_p distribution
            top_k=0, min_p=0.0,
        )
        if params.seed is not None:
            kwargs["seed"] = params.seed + i  # n>1 is n calls: the same seed would repeat the text
        if params.logprobs:
            # the chat handler drops logprobs unless top_logprobs is set too
            kwargs.update(logprobs=True, top_logprobs=1)
        if params.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": params.json_schema}
        return kwargs

    # -- scoring ------------------------------------------------------------------------------

    async def score_candidates(self, conversations: list[Conversation], candidates: list[str], prefix: str | list[str] = "") -> list[CandidateScores]:
        if not candidates:
            raise NotosError("score_candidates needs at least one candidate")
        formatter = self._chat_formatter()
        problem = self._multi_token(candidates)
        if problem:
            return [CandidateScores(logprobs={c: None for c in candidates}, error=problem) for _ in conversations]
        prefixes = per_conversation(prefix, len(conversations))
        return [await asyncio.get_running_loop().run_in_executor(self._worker, self._score_one, formatter, conv, candidates, p)
                for conv, p in zip(conversations, prefixes)]

    def _chat_formatter(self):
        """The GGUF's own chat template, rendered the way create_chat_completion renders it."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = self.llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise NotosError(f"llm (llamacpp): {self.model_name} has no chat template in its GGUF metadata, so candidates cannot be scored")
            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=self._token_text(self.llama.token_eos()),
                bos_token=self._token_text(self.llama.token_bos()), add_generation_prompt=True,
            )
        return self._formatter

    def _token_text(self, token_id: int) -> str:
        return self.llama.detokenize([token_id], special=True).decode("utf-8", "replace") if token_id >= 0 else ""

    def _multi_token(self, candidates: list[str]) -> str | None:
        long = [c for c in candidates if len(self.llama.tokenize(c.strip().encode("utf-8"), add_bos=False)) != 1]
        if long:
            return f"candidates must each be one token of {self.model_name}'s vocabulary; these are not: {', '.join(map(repr, long))}"
        return None

    def _score_one(self, formatter, conv: Conversation, candidates: list[str], prefix: str) -> CandidateScores:
        import numpy as np  # a dependency of llama-cpp-python

        try:
            # the template writes the special tokens itself, so no extra BOS (as the chat path does)
            tokenize = lambda text: self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)  # noqa: E731
            tokens = scoring_tokens(tokenize, formatter(messages=conv).prompt + prefix, candidates[0])
            if len(tokens) >= self.llama.n_ctx():
                raise ValueError(f"the prompt has {len(tokens)} tokens, more than the context window (n_ctx={self.llama.n_ctx()})")
            # One decode and the last row of the logits that logits_all keeps, rather than
            # create_completion(max_tokens=1, logprobs=N): that path sorts the whole vocabulary
            # in Python and log-softmaxes every prompt row, ~0.2 s more per conversation.
            with self._lock:
                self.llama.reset()
                self.llama.eval(tokens)
                logprobs = self.llama.logits_to_logprobs(self.llama.scores[self.llama.n_tokens - 1])
            top = np.argpartition(logprobs, -SCORE_TOP_LOGPROBS)[-SCORE_TOP_LOGPROBS:]
            pairs = [(self._token_text(int(i)), float(logprobs[i])) for i in top]
            return CandidateScores(logprobs=match_candidates(pairs, candidates))
        except Exception as exc:
            return CandidateScores(logprobs={c: None for c in candidates}, error=error_text(exc))

    async def close(self) -> None:
        # the model stays loaded: get_llm shares this instance and a later run reuses it
        return None


def scoring_tokens(tokenize, text: str, probe: str) -> list[int]:
    """Tokens of the prompt + prefix, ending where the tokenizer would start the answer: where
    a trailing space joins the next word (" A" is one token), the space is left to the answer."""
    tokens = tokenize(text)
    if text != text.rstrip() and tokenize(text + probe.strip())[: len(tokens)] != tokens:
        return tokenize(text.rstrip())
    return tokens
