"""Attention for decoding steps that gives a row the same result whatever rows decode beside it.

In a running batch (decode.py) every row's keys are left-padded to the longest row, and the
padding is masked out. Masked or not, the padded positions change the order in which the
softmax and the weighted sum add up, so a row's output differs in the last bits with the
rows beside it. In float32 that rarely shows; once an activation is rounded to bfloat16 (the
4-bit decode path, q4_decode.py) such a last-bit difference can cross a rounding boundary and
grow until a sampled or greedy token changes, and a rerun that batches rows differently would
not make the same rows. So a one-token step attends row by row over that row's own keys only
(a row's real keys are always the newest ones: padding only ever goes on the left), exactly as
when the row decodes alone. Prompts (several tokens per row) use transformers' SDPA unchanged.
"""

from __future__ import annotations

NAME = "notos_rows"


def register() -> str:
    """Make `NAME` an attention implementation transformers can dispatch to; returns it."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    def attention(module, query, key, value, attention_mask, **kwargs):
        if query.shape[2] != 1:
            return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
        import torch

        outputs = []
        for row in range(query.shape[0]):
            length = _real_keys(attention_mask, row, key.shape[2])
            out, _ = sdpa_attention_forward(module, query[row:row + 1], key[row:row + 1, :, -length:],
                                            value[row:row + 1, :, -length:], None, **{**kwargs, "is_causal": False})
            outputs.append(out)
        return torch.cat(outputs, dim=0), None

    ALL_ATTENTION_FUNCTIONS.register(NAME, attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)  # the attention above reads SDPA's boolean mask
    return NAME


def _real_keys(attention_mask, row: int, key_length: int) -> int:
    """How many of the newest keys row `row` attends to (mask: None, or boolean/additive
    [rows, 1, 1, keys] where the real keys are a suffix)."""
    if attention_mask is None:
        return key_length
    allowed = attention_mask[row, 0, -1, -key_length:]
    allowed = allowed if allowed.dtype.is_floating_point is False else allowed == 0
    return int(allowed.sum())


def use_row_attention(model) -> None:
    """Switch a loaded transformers model to row-by-row attention for one-token steps."""
    model.set_attn_implementation(register())
