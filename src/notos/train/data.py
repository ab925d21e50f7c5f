"""Training data in TRL's formats, from Parquet / JSONL files, folders of them, or hf:// datasets.

Preference pairs (DPO, reward model): `prompt`, `chosen`, `rejected`, each a list of chat
messages or a string: exactly what `notos curate binarize` writes. Other columns (prompt_id,
score_chosen, ...) are dropped before TRL sees them. A `chosen` that repeats the prompt's
messages (UltraFeedback-binarized style) is cut to the reply; without a `prompt` column the
prompt is the shared beginning of chosen and rejected (TRL's `extract_prompt`).

SFT rows: `messages` (a conversation), or `prompt` + `completion` (more forms: `sft_rows`).
Plain-text prompts and replies become one user turn and one assistant turn, so the model's chat
template applies (`text_as_chat: false` keeps text that is formatted already as it is).
"""

from __future__ import annotations

import random
from pathlib import Path

from notos.errors import DataError, NotosError


def data_files(spec: str) -> list[str]:
    """The files of a data spec. A folder that `notos curate` wrote holds data.parquet (and maybe
    data.jsonl, the same rows, and stats/config JSON): only data.parquet is data. Any other
    folder: its Parquet files, else its JSONL files, recursively (a `notos run` folder's
    data/<leaf>/part-*.parquet), skipping hidden folders (caches kept beside the data)."""
    if spec.startswith("hf://"):
        return [spec]
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{spec}: no such file or folder")
    if path.is_file():
        return [str(path)]
    for name in ("data.parquet", "data.jsonl"):
        if (path / name).is_file():
            return [str(path / name)]
    for suffix in (".parquet", ".jsonl"):
        files = sorted(str(p) for p in path.rglob(f"*{suffix}") if p.is_file()
                       and not any(part.startswith(".") or part == "cache" for part in p.relative_to(path).parts))
        if files:
            return files
    raise DataError(f"{spec}: folder holds no .parquet or .jsonl files")


def read_rows(spec: str, split: str | None = None, limit: int | None = None) -> list[tuple[str, dict]]:
    """(file, row) pairs, at most `limit` of them."""
    from notos.data.io import read_rows as read_file

    out = []
    for file in data_files(spec):
        out.extend((file, row) for row in read_file(file, split))
        if limit and len(out) >= limit:
            return out[:limit]
    if not out:
        raise DataError(f"{spec}: no rows")
    return out


def preference_rows(spec: str, split: str | None = None, limit: int | None = None, as_chat: bool = True) -> list[dict]:
    pairs = [to_pair(row, file) for file, row in read_rows(spec, split, limit)]
    # One form for all rows (Arrow wants one type per column); text becomes one user turn and one
    # assistant turn unless the recipe says the text is formatted already (text_as_chat: false).
    if as_chat or any(isinstance(p["prompt"], list) for p in pairs):
        pairs = [p if isinstance(p["prompt"], list) else
                 {"prompt": _as_messages(p["prompt"], "user"), "chosen": _as_messages(p["chosen"], "assistant"),
                  "rejected": _as_messages(p["rejected"], "assistant")} for p in pairs]
    return pairs


def to_pair(row: dict, file: str) -> dict:
    from trl.data_utils import extract_prompt

    for column in ("chosen", "rejected"):
        if column not in row:
            raise DataError(f"{file}: no column '{column}' (preference pairs need prompt, chosen, rejected)")
        _check_turns(row[column], column, file)
    if row.get("prompt") is None:
        pair = extract_prompt({"chosen": row["chosen"], "rejected": row["rejected"]})
        return {k: pair[k] for k in ("prompt", "chosen", "rejected")}
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    _check_turns(prompt, "prompt", file)
    if isinstance(prompt, str) and isinstance(chosen, str) and isinstance(rejected, str):
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    prompt = _as_messages(prompt, "user")
    return {"prompt": prompt, "chosen": _reply(prompt, chosen), "rejected": _reply(prompt, rejected)}


RESPONSE_COLUMNS = ("response", "output", "generation")


def sft_rows(spec: str, split: str | None = None, limit: int | None = None, as_chat: bool = True) -> list[dict]:
    """Conversations, or prompt/completion pairs. Also taken: instruction + response (or output,
    generation: what `notos run synthesize` writes) and preference pairs (SFT on the chosen reply)."""
    out = []
    for file, row in read_rows(spec, split, limit):
        if row.get("messages") is not None:
            _check_turns(row["messages"], "messages", file, text_ok=False)
            out.append({"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]})
            continue
        if "prompt" in row and "completion" in row:
            prompt, completion = row["prompt"], row["completion"]
        elif "instruction" in row and any(c in row for c in RESPONSE_COLUMNS):
            prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
            completion = next(row[c] for c in RESPONSE_COLUMNS if c in row)
        elif "chosen" in row:
            pair = to_pair(row, file)
            prompt, completion = pair["prompt"], pair["chosen"]
        else:
            raise DataError(f"{file}: no column 'messages' (SFT takes messages, prompt + completion, "
                            f"instruction + response, or preference pairs; columns here: {', '.join(row)})")
        _check_turns(prompt, "prompt", file)
        _check_turns(completion, "completion", file)
        if as_chat or not (isinstance(prompt, str) and isinstance(completion, str)):
            prompt, completion = _as_messages(prompt, "user"), _as_messages(completion, "assistant")
        out.append({"prompt": prompt, "completion": completion})
    if len({"messages" in r for r in out}) > 1:  # one form for all rows: conversations
        out = [r if "messages" in r else {"messages": r["prompt"] + r["completion"]} for r in out]
    return out


def train_and_held_out(r, read_rows=None) -> tuple[list[dict], list[dict]]:
    """The recipe's rows for training (preference pairs unless `read_rows` says otherwise), and
    the held-out rows: its eval_data when given, else a seeded eval_fraction of data."""
    read_rows = read_rows or preference_rows
    rows = read_rows(r.data, r.data_split, r.limit, r.text_as_chat)
    held = read_rows(r.eval_data, r.eval_split, None, r.text_as_chat) if r.eval_data else None
    return (rows, held) if held else split_off(rows, r.eval_fraction, r.seed)


def split_off(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A held-out share of the rows (at least one when fraction > 0), drawn reproducibly."""
    if fraction <= 0:
        return rows, []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(rows) * fraction))
    if n_eval >= len(rows):
        raise NotosError(f"eval_fraction {fraction} leaves no training rows out of {len(rows)}")
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def _check_turns(value, column: str, file: str, text_ok: bool = True) -> None:
    if isinstance(value, str) and text_ok:
        return
    ok = isinstance(value, (list, tuple)) and value and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)
    if not ok:
        kinds = "a string or " if text_ok else ""
        raise DataError(f"{file}: column '{column}' must hold {kinds}a list of {{role, content}} messages, got {str(value)[:60]!r}")


def _as_messages(value, role: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _reply(prompt: list[dict], value) -> list[dict]:
    messages = _as_messages(value, "assistant")
    if len(messages) > len(prompt) and messages[:len(prompt)] == prompt:
        return messages[len(prompt):]
    if messages and messages[0]["role"] == "user" and messages[0]["content"] == prompt[-1]["content"]:
        return messages[1:]  # the prompt string repeated as the first turn
    return messages
