"""Attention for decoding steps that gives a row the same result whatever rows decode beside it.

In a running batch (decode.py) every row's keys are left-padded to the longest row, and the
padding is masked out. Masked or not, the padded positions change the order in which the
softmax and the weighted sum add up, so a row's output differs in the last bits with the
rows beside it. In float32 that rarely shows; once an activation is rounded to bfloat16 (the
4-bit decode path, q4_decode.py) such a last-bit difference can cross a rounding boundary and
grow until a sampled or greedy token changes, and a rerun that batches rows differently would
not make the same rows. So a one-token step attends row by row over that row's own keys only
(a row's real keys are always the newest ones: padding only ever goes on the left), exactly as
when the row decodes alone, and so does the prompt pass of rows admitted together (causally,
over each row's own tokens). Other passes with several tokens per row (log-prob scoring) use
transformers' SDPA unchanged.
"""

from __future__ import annotations

from notos.llms.q4_decode import in_generation

NAME = "notos_rows"


def register() -> str:
    """Make `NAME` an attention implementation transformers can dispatch to; returns it."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    def attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
        grouped = getattr(module, "num_key_value_groups", 1) > 1
        if query.shape[2] == 1:
            return _one_token_by_row(query, key, value, attention_mask, scaling, grouped)
        if in_generation() and query.shape[2] == key.shape[2]:
            return _prompts_by_row(query, key, value, attention_mask, scaling, grouped)
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)

    ALL_ATTENTION_FUNCTIONS.register(NAME, attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)  # the attention above reads SDPA's boolean mask
    return NAME


def _one_token_by_row(query, key, value, attention_mask, scaling, grouped: bool):
    """query [rows, heads, 1, dim], keys/values [rows, kv heads, length, dim] -> [rows, 1, heads, dim].
    Plain torch SDPA per row (transformers' wrapper costs more than the attention at this size)."""
    import torch

    attend = torch.nn.functional.scaled_dot_product_attention
    lengths = _real_key_counts(attention_mask, query.shape[0], key.shape[2])
    outputs = [attend(query[row:row + 1], key[row:row + 1, :, -length:], value[row:row + 1, :, -length:],
                      scale=scaling, enable_gqa=grouped)
               for row, length in enumerate(lengths)]
    return torch.cat(outputs, dim=0).transpose(1, 2).contiguous(), None


def _prompts_by_row(query, key, value, attention_mask, scaling, grouped: bool):
    """The prompt pass of rows admitted together (left-padded, no earlier keys): each row's real
    tokens attend causally to each other only; the padded positions get zeros (nothing reads them)."""
    import torch

    attend = torch.nn.functional.scaled_dot_product_attention
    lengths = _real_key_counts(attention_mask, query.shape[0], key.shape[2])
    output = query.new_zeros(query.shape)
    for row, length in enumerate(lengths):
        if length:
            output[row, :, -length:] = attend(query[row:row + 1, :, -length:], key[row:row + 1, :, -length:],
                                              value[row:row + 1, :, -length:], scale=scaling, is_causal=True,
                                              enable_gqa=grouped)[0]
    return output.transpose(1, 2).contiguous(), None


def _real_key_counts(attention_mask, rows: int, key_length: int) -> list[int]:
    """How many of the newest keys each row attends to (mask: None, or boolean/additive
    [rows, 1, queries, keys] where a row's real keys are a suffix: its last query sees them all)."""
    if attention_mask is None:
        return [key_length] * rows
    allowed = attention_mask[:, 0, -1, -key_length:].expand(rows, -1)
    allowed = allowed if not allowed.dtype.is_floating_point else allowed == 0
    return allowed.sum(-1).tolist()


def use_row_attention(model) -> None:
    """Switch a loaded transformers model to row-by-row attention for one-token steps."""
    model.set_attn_implementation(register())
