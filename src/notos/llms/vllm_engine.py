"""vLLM's offline engine: batched generation on a GPU (extra `vllm`).

    llm = build_llm({"backend": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct", "max_model_len": 4096})

Prompts are rendered with the model's chat template here and handed to vLLM as token ids, so
generation and candidate scoring see exactly the same prompt (and no second BOS is added).
vLLM's calls are synchronous and one engine serves one call at a time: they run in a worker
thread under a lock.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from notos.errors import NotosError, require_extra
from notos.llms.chat_templates import resolve_template
from notos.llms.llamacpp import error_text, scoring_tokens
from notos.llms.types import CandidateScores, Conversation, Generation, GenerationParams, match_candidates, per_conversation

SCORE_TOP_LOGPROBS = 20  # vLLM's default max_logprobs: more needs an engine option


class VLLMEngine:
    def __init__(
        self, model: str, dtype: str = "auto", gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
        tensor_parallel_size: int = 1, seed: int = 0, chat_template: str | None = None,
        trust_remote_code: bool = False, enforce_eager: bool = False,
    ):
        vllm = require_extra("vllm", "vllm")
        import torch  # vllm depends on it

        if not torch.cuda.is_available():
            raise NotosError("the vllm backend needs a GPU (torch sees no CUDA device); use llamacpp:FILE.gguf, transformers:MODEL or an OpenAI-compatible server instead")
        self.model_name = model.rstrip("/").rsplit("/", 1)[-1]
        self.chat_template = resolve_template(chat_template)  # None: the tokenizer's own
        try:
            self.llm = vllm.LLM(
                model=model, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                tensor_parallel_size=tensor_parallel_size, seed=seed, trust_remote_code=trust_remote_code,
                enforce_eager=enforce_eager,
            )
        except (OSError, ValueError) as exc:  # unknown model, bad path, does not fit in memory
            raise NotosError(f"llm (vllm): cannot load {model}: {error_text(exc)}") from None
        self.tokenizer = self.llm.get_tokenizer()
        self._lock = threading.Lock()  # a threading lock: the instance is shared across event loops
        # A worker of its own: batches waiting for the model must not fill the loop's default pool.
        self._worker = ThreadPoolExecutor(1)

    # -- prompts ------------------------------------------------------------------------------

    def _prompt(self, conv: Conversation, prefix: str = "", probe: str = "") -> dict:
        text = self.tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True, chat_template=self.chat_template)
        # the template writes the special tokens itself: encoding must not add a BOS again
        tokenize = lambda t: self.tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
        return {"prompt_token_ids": scoring_tokens(tokenize, text + prefix, probe) if probe else tokenize(text)}

    def _run(self, conversations: list[Conversation], sampling, prefix: str | list[str] = "", probe: str = "") -> list:
        """One RequestOutput or one exception per conversation. vLLM validates a whole batch at
        once (one over-long prompt fails all), so a failed batch is retried one by one."""
        results: list = [None] * len(conversations)
        prefixes = per_conversation(prefix, len(conversations))
        prompts, index = [], []
        for i, conv in enumerate(conversations):
            try:
                prompts.append(self._prompt(conv, prefixes[i], probe))
                index.append(i)
            except Exception as exc:  # e.g. a role the template refuses
                results[i] = exc
        if not prompts:
            return results
        with self._lock:
            try:
                for i, out in zip(index, self.llm.generate(prompts, sampling, use_tqdm=False)):
                    results[i] = out
            except Exception:
                for i, prompt in zip(index, prompts):
                    try:
                        results[i] = self.llm.generate([prompt], sampling, use_tqdm=False)[0]
                    except Exception as exc:
                        results[i] = exc
        return results

    # -- generation ---------------------------------------------------------------------------

    async def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Generation]:
        sampling = self._sampling(params)
        outs = await asyncio.get_running_loop().run_in_executor(self._worker, self._run, conversations, sampling)
        return [to_generation(out, params.logprobs) for out in outs]

    def _sampling(self, params: GenerationParams):
        from vllm import SamplingParams

        kwargs = dict(
            n=params.n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None, seed=params.seed,
        )
        if params.logprobs:
            kwargs["logprobs"] = 1  # the chosen token's logprob is always included
        if params.json_schema is not None:
            kwargs.update(structured_output(params.json_schema))
        return SamplingParams(**kwargs)

    # -- scoring ------------------------------------------------------------------------------

    async def score_candidates(self, conversations: list[Conversation], candidates: list[str], prefix: str | list[str] = "") -> list[CandidateScores]:
        if not candidates:
            raise NotosError("score_candidates needs at least one candidate")
        from vllm import SamplingParams

        long = [c for c in candidates if len(self.tokenizer.encode(c.strip(), add_special_tokens=False)) != 1]
        if long:
            error = f"candidates must each be one token of {self.model_name}'s vocabulary; these are not: {', '.join(map(repr, long))}"
            return [CandidateScores(logprobs={c: None for c in candidates}, error=error) for _ in conversations]
        sampling = SamplingParams(n=1, temperature=0.0, max_tokens=1, logprobs=SCORE_TOP_LOGPROBS)
        outs = await asyncio.get_running_loop().run_in_executor(self._worker, self._run, conversations, sampling, prefix, candidates[0])
        scores = []
        for out in outs:
            try:
                if isinstance(out, BaseException):
                    raise out
                first = out.outputs[0].logprobs[0]  # token id -> Logprob(logprob, rank, decoded_token)
                pairs = [
                    (lp.decoded_token if lp.decoded_token is not None else self.tokenizer.decode([token_id]), float(lp.logprob))
                    for token_id, lp in first.items()
                ]
                scores.append(CandidateScores(logprobs=match_candidates(pairs, candidates)))
            except Exception as exc:
                scores.append(CandidateScores(logprobs={c: None for c in candidates}, error=error_text(exc)))
        return scores

    async def close(self) -> None:
        # the engine stays loaded: get_llm shares this instance and a later run reuses it
        return None


def structured_output(schema: dict) -> dict:
    """JSON-schema decoding, in whichever form this vLLM has: `structured_outputs` (0.10.2+;
    `guided_decoding` was removed in 0.12) or `guided_decoding` (older)."""
    import vllm.sampling_params as sp

    if hasattr(sp, "StructuredOutputsParams"):
        return {"structured_outputs": sp.StructuredOutputsParams(json=schema)}
    if hasattr(sp, "GuidedDecodingParams"):
        return {"guided_decoding": sp.GuidedDecodingParams(json=schema)}
    raise NotosError("llm (vllm): this vLLM version has no structured output (json_schema); upgrade vllm")


def to_generation(out, want_logprobs: bool) -> Generation:
    if isinstance(out, BaseException):
        return Generation(error=error_text(out))
    try:
        gen = Generation(prompt_tokens=len(out.prompt_token_ids or []), token_logprobs=[] if want_logprobs else None)
        for comp in out.outputs:
            gen.texts.append(comp.text)
            gen.finish_reasons.append(comp.finish_reason or "stop")
            gen.completion_tokens += len(comp.token_ids)
            if want_logprobs:
                steps = comp.logprobs or []
                gen.token_logprobs.append([
                    (step[tok].decoded_token or "", float(step[tok].logprob)) for tok, step in zip(comp.token_ids, steps)
                ])
        return gen
    except Exception as exc:
        return Generation(error=error_text(exc))
