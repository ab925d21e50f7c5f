"""TRL's row formats, one row at a time: preference pairs and SFT examples.

Preference pairs (DPO, reward model): `prompt`, `chosen`, `rejected`, each a list of chat
messages or a string: exactly what `notos curate binarize` writes. Other columns (prompt_id,
score_chosen, ...) are dropped. A `chosen` that repeats the prompt's messages
(UltraFeedback-binarized style) is cut to the reply; without a `prompt` column the prompt is the
shared beginning of chosen and rejected (TRL's `extract_prompt`).

SFT examples: `messages` (a conversation), `prompt` + `completion`, `instruction` (+ `input`) +
a response column (what `notos run synthesize` writes), or a preference pair (its chosen reply).
`origin` (the file a row came from) names the file in every error.
"""

from __future__ import annotations

from notos.errors import DataError

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
RESPONSE_COLUMNS = ("response", "output", "generation")


def to_pair(row: dict, origin: str) -> dict:
    """{prompt, chosen, rejected}: three strings, or three message lists."""
    for column in ("chosen", "rejected"):
        if column not in row:
            raise DataError(f"{origin}: no column '{column}' (preference pairs need prompt, chosen, rejected)"
                            + _binarize_hint(row))
        check_turns(row[column], column, origin)
    if row.get("prompt") is None:
        return split_shared_prompt(row["chosen"], row["rejected"])
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    check_turns(prompt, "prompt", origin)
    if isinstance(prompt, str) and isinstance(chosen, str) and isinstance(rejected, str):
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    prompt = as_messages(prompt, "user")
    return {"prompt": prompt, "chosen": _reply(prompt, chosen), "rejected": _reply(prompt, rejected)}


# Columns of the data `notos curate binarize` turns into pairs: rated generations (a notos run),
# UltraFeedback records, the generic form, the completions table.
RATED_COLUMNS = ("generations", "completions", "responses", "completion_index")


def _binarize_hint(row: dict) -> str:
    found = [c for c in RATED_COLUMNS if c in row]
    if not found:
        return ""
    return (f"; this looks like rated responses (column '{found[0]}'), not pairs: make pairs with "
            "`notos curate binarize DATA --out PAIRS` and train on PAIRS")


def split_shared_prompt(chosen, rejected) -> dict:
    """A pair without a prompt column (Anthropic HH's layout): the prompt is what chosen and
    rejected share from the start — whole messages, or text up to the first difference (a space
    just before it stays with the answers)."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if isinstance(chosen, str) and shared and chosen[shared - 1] == " " and shared < len(chosen):
        shared -= 1
    return {"prompt": chosen[:shared], "chosen": chosen[shared:], "rejected": rejected[shared:]}


def pair_as_chat(pair: dict) -> dict:
    """A pair of strings as one user turn and two assistant turns (message lists stay)."""
    if isinstance(pair["prompt"], list):
        return pair
    return {"prompt": as_messages(pair["prompt"], "user"), "chosen": as_messages(pair["chosen"], "assistant"),
            "rejected": as_messages(pair["rejected"], "assistant")}


def to_sft(row: dict, origin: str, as_chat: bool = True) -> dict:
    """{messages} or {prompt, completion} from any of the SFT forms (see the module docstring)."""
    if row.get("messages") is not None:
        check_turns(row["messages"], "messages", origin, text_ok=False)
        return {"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}
    if "prompt" in row and "completion" in row:
        prompt, completion = row["prompt"], row["completion"]
    elif "instruction" in row and any(c in row for c in RESPONSE_COLUMNS):
        prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        completion = next(row[c] for c in RESPONSE_COLUMNS if c in row)
    elif "chosen" in row:
        pair = to_pair(row, origin)
        prompt, completion = pair["prompt"], pair["chosen"]
    else:
        raise DataError(f"{origin}: no column 'messages' (SFT takes messages, prompt + completion, "
                        f"instruction + response, or preference pairs; columns here: {', '.join(row)})")
    check_turns(prompt, "prompt", origin)
    check_turns(completion, "completion", origin)
    if as_chat or not (isinstance(prompt, str) and isinstance(completion, str)):
        prompt, completion = as_messages(prompt, "user"), as_messages(completion, "assistant")
    return {"prompt": prompt, "completion": completion}


def check_turns(value, column: str, origin: str, text_ok: bool = True) -> None:
    if isinstance(value, str) and text_ok:
        return
    ok = isinstance(value, (list, tuple)) and value and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)
    if not ok:
        kinds = "a string or " if text_ok else ""
        raise DataError(f"{origin}: column '{column}' must hold {kinds}a list of {{role, content}} messages, "
                        f"got {str(value)[:60]!r}")


def as_messages(value, role: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _reply(prompt: list[dict], value) -> list[dict]:
    messages = as_messages(value, "assistant")
    if len(messages) > len(prompt) and messages[:len(prompt)] == prompt:
        return messages[len(prompt):]
    if messages and messages[0]["role"] == "user" and messages[0]["content"] == prompt[-1]["content"]:
        return messages[1:]  # the prompt string repeated as the first turn
    return messages
