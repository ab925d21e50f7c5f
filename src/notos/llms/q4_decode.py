"""Decode a Q4_1 GGUF model with its own 4-bit weights, as llama.cpp does.

One decoding step reads every weight once for one token per row, so on a CPU it is bound by
memory bandwidth: the float32 weights that transformers dequantizes a GGUF file to are 8x the
bytes of the file's 4-bit blocks. The embedded SmolLM2 file is Q4_1: each block of 32 weights is
`d * q + m` with q in 0..15. Those values are recovered exactly from the dequantized float32
weights (the block's smallest weight has q = 0, its largest q = 15) and packed for torch's int4
CPU kernel, whose `(q - 8) * scale + zero` form holds Q4_1 with scale = d, zero = m + 8d.

Only generation takes the 4-bit path (`generating()`, entered by decode.py for the prompt pass
of the rows it admits and for every one-token step); log-prob scoring keeps the float32 weights,
so ratings are what they were. The kernel takes bfloat16 activations: the input of each
projection is rounded to bfloat16, its output is float32 again. Its result for a row does not
depend on the other rows in the batch, for any batch size or thread count (the float32 GEMM's
does, in the last bits), so together with row_attention.py a rerun that batches rows
differently generates them the same.

Measured in bench/embedded_tokens_per_s.py (bench/README.md), 1 thread: 2.2x the float32 rate at
batch 1 (0.67x llama.cpp on the same file), 2x at batch 8, 1.5x at batch 24.
"""

from __future__ import annotations

import contextlib
import functools
import threading

GROUP = 32  # Q4_1 block size; also a group size the int4 kernel supports
LEVELS = 15  # q in 0..15
EXACT = 1e-5  # a weight matrix counts as Q4_1 when every weight is recovered within this share of its largest
_state = threading.local()  # set while the model's own thread runs a generation forward pass


@contextlib.contextmanager
def generating(prompts: bool = False):
    """Generation's forward passes run inside this: swapped layers then use their quick weights
    (and row_attention.py attends row by row). `prompts`: the prompt pass of newly admitted
    rows, many tokens per row, where a bfloat16 GEMM beats the int4 kernel (see below)."""
    _state.generating, _state.prompts = True, prompts
    try:
        yield
    finally:
        _state.generating = _state.prompts = False


def in_generation() -> bool:
    return getattr(_state, "generating", False)


def in_prompt_pass() -> bool:
    return getattr(_state, "prompts", False)


def available(torch) -> bool:
    """The int4 CPU kernel exists and the CPU runs bfloat16 natively (elsewhere it is slower)."""
    if not hasattr(torch, "_weight_int4pack_mm_for_cpu"):
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def cache_file() -> str:
    """The packs' file in the weights cache. The int4 kernel's packed layout depends on torch's
    version and the CPU path it runs (blocks of 64 columns on AVX512, 32 on AVX2), so both are
    in the name: a cache shared between machines, or read after a torch upgrade, repacks."""
    import torch

    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    return f"q4-{torch.__version__}-{capability}.safetensors".replace("+", "_")


def file_has_q4_1(gguf_path) -> bool:
    """Whether a GGUF file holds Q4_1 tensors (its header only): other files (Q4_K, Q8_0, ...)
    skip the recovery, which costs a pass over every weight."""
    try:
        from gguf import GGUFReader

        return any(t.tensor_type.name == "Q4_1" for t in GGUFReader(str(gguf_path)).tensors)
    except Exception:  # noqa: BLE001 - an unreadable header: decode in float32
        return False


def recover_q4_1(weight):
    """(q as int32 [out, in], d [out, in/32], m [out, in/32]) when `weight` is exactly a Q4_1
    matrix dequantized, else None."""
    import torch

    out_features, in_features = weight.shape
    if in_features % GROUP:
        return None
    blocks = weight.detach().float().reshape(out_features, in_features // GROUP, GROUP)
    low = blocks.amin(-1, keepdim=True)
    step = (blocks.amax(-1, keepdim=True) - low) / LEVELS
    safe_step = torch.where(step > 0, step, torch.ones_like(step))  # a constant block: q = 0
    q = torch.round((blocks - low) / safe_step).clamp(0, LEVELS)
    error = (q * step + low - blocks).abs().max()
    if error > EXACT * max(float(blocks.abs().max()), 1e-12):
        return None
    return q.reshape(out_features, in_features).to(torch.int32), step.squeeze(-1), low.squeeze(-1)


@functools.cache
def _decode_linear_class():
    """The module class, made on first use so that importing this file does not import torch."""
    import torch

    class Q4DecodeLinear(torch.nn.Module):
        """Stands in for an `nn.Linear` without bias: 4-bit in generation, float32 otherwise."""

        def __init__(self, linear, packed, scales_zeros):
            super().__init__()
            self.weight = linear.weight  # float32, shared, for prompts and scoring; same state_dict key
            self.out_features = linear.out_features
            self.packed, self.scales_zeros = packed, scales_zeros  # plain attributes: not in the state_dict
            self.weight_bf16 = None  # for prompt passes, made on first use

        def forward(self, x):
            if not in_generation():
                return torch.nn.functional.linear(x, self.weight)
            if in_prompt_pass():
                # The int4 kernel's cost grows with the rows (~0.025 ms per row of a 1536x576
                # projection): past a few dozen tokens oneDNN's bfloat16 GEMM is 2-2.5x faster,
                # and it too gives a row the same result in any batch. The copy is made on first
                # use (+2 bytes per weight), so loading and scoring-only runs do not pay for it.
                if self.weight_bf16 is None:
                    self.weight_bf16 = self.weight.detach().to(torch.bfloat16)
                return torch.nn.functional.linear(x.to(torch.bfloat16), self.weight_bf16).to(x.dtype)
            flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
            y = torch._weight_int4pack_mm_for_cpu(flat, self.packed, GROUP, self.scales_zeros)
            return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    return Q4DecodeLinear


@functools.cache
def _generation_head_class():
    import torch

    class Bf16GenerationHead(torch.nn.Module):
        """The output projection in bfloat16 during generation (2-3x the float32 speed here, and a
        row's logits do not depend on the other rows: checked for batches of 1-32, 1 and 2
        threads); float32 for log-prob scoring."""

        def __init__(self, linear):
            super().__init__()
            self.weight = linear.weight  # shared with the input embeddings where they are tied
            self.weight_bf16 = linear.weight.detach().to(torch.bfloat16)  # plain attribute: not in the state_dict

        def forward(self, x):
            if not in_generation():
                return torch.nn.functional.linear(x, self.weight)
            return torch.nn.functional.linear(x.to(torch.bfloat16), self.weight_bf16).to(x.dtype)

    return Bf16GenerationHead


def use_bf16_generation_head(model) -> bool:
    """Swap the model's output projection for one that generates in bfloat16 (see above)."""
    import torch

    head = getattr(model, "lm_head", None)
    if not isinstance(head, torch.nn.Linear) or head.bias is not None or head.weight.dtype != torch.float32:
        return False
    model.lm_head = _generation_head_class()(head)
    return True


def use_q4_decoding(model, cached: dict | None = None) -> dict:
    """Swap every bias-free float32 linear layer of `model` whose weights are Q4_1 for the 4-bit
    decode path. Returns the packs it used, {layer name + ".packed" / ".scales_zeros": tensor},
    for the weights cache; `cached` (packs from an earlier load) skips the recovery (~1 s)."""
    import torch

    packs = {}
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if not (isinstance(child, torch.nn.Linear) and child.bias is None and child.weight.dtype == torch.float32):
                continue
            key = f"{parent_name}.{name}" if parent_name else name
            if cached is not None:
                if f"{key}.packed" not in cached:
                    continue
                pack = (cached[f"{key}.packed"], cached[f"{key}.scales_zeros"])
            else:
                recovered = recover_q4_1(child.weight)
                if recovered is None:
                    continue
                pack = pack_q4_1(*recovered)
            packs[f"{key}.packed"], packs[f"{key}.scales_zeros"] = pack
            setattr(parent, name, _decode_linear_class()(child, *pack))
    return packs


def pack_q4_1(q, step, low):
    """The int4 kernel's operands: packed q, and [in/32, out, 2] scale and zero per block."""
    import torch

    packed = torch._convert_weight_to_int4pack_for_cpu(q, 2).contiguous()
    scales_zeros = torch.stack([step, low + 8 * step], -1).transpose(0, 1).contiguous().to(torch.bfloat16)
    return packed, scales_zeros
