"""Training data in TRL's formats, from whatever `notos.data.locate` finds: a Parquet / JSONL file,
a folder of parts, a `notos run` folder (its one leaf), a `notos curate` output (its
data.parquet), a saved dataset, or hf://owner/name.

Preference pairs (DPO, reward model) and SFT rows are TRL's forms (`notos.data.pairs`): other
columns are dropped before TRL sees them. Plain-text prompts and replies become one user turn
and one assistant turn, so the model's chat template applies (`text_as_chat: false` keeps text
that is formatted already as it is).
"""

from __future__ import annotations

import random

from notos.data.io import iter_batches
from notos.data.io import read_rows as read_file
from notos.data.locate import HUB_PREFIX, locate
from notos.data.pairs import pair_as_chat, to_pair, to_sft
from notos.errors import DataError, NotosError


def sources(spec: str) -> list[str]:
    """What to read for a data spec, one entry per file (so errors name the file); a Hub dataset
    or a saved dataset folder is one entry."""
    location = locate(spec)
    if location.kind in ("hub", "saved"):
        return [spec]
    return [str(f) for f in location.data_files()]


def read_rows(spec: str, split: str | None = None, limit: int | None = None) -> list[tuple[str, dict]]:
    """(file, row) pairs, at most `limit` of them."""
    out = []
    for file in sources(spec):
        out.extend((file, row) for row in read_file(file, split))
        if limit and len(out) >= limit:
            return out[:limit]
    if not out:
        raise DataError(f"{spec}: no rows")
    return out


def check_data(spec: str, label: str, kind: str, split: str | None = None, as_chat: bool = True) -> None:
    """Before any model is loaded (a minute on a big one): the data exists, reads, has at least one
    row, and its first rows have the columns this kind of training needs. `label` says where the
    path came from (`--data`, `eval_data`, ...) and starts the one-line error. Hub data is read
    when training starts."""
    if spec.startswith(HUB_PREFIX):
        return
    convert = to_pair if kind in ("dpo", "rm") else (lambda row, file: to_sft(row, file, as_chat))
    try:
        first: list[tuple[str, dict]] = []
        for file in sources(spec):
            for batch in iter_batches(file, 1000, split):
                first = [(file, row) for row in batch]
                break
            if first:
                break
        if not first:
            raise DataError(f"{spec}: no rows")
        for file, row in first:
            convert(row, file)
    except DataError as exc:
        raise DataError(f"{label} {exc}") from None


def preference_rows(spec: str, split: str | None = None, limit: int | None = None, as_chat: bool = True) -> list[dict]:
    pairs = [to_pair(row, file) for file, row in read_rows(spec, split, limit)]
    # One form for all rows (Arrow wants one type per column); text becomes one user turn and one
    # assistant turn unless the recipe says the text is formatted already (text_as_chat: false).
    if as_chat or any(isinstance(p["prompt"], list) for p in pairs):
        pairs = [pair_as_chat(p) for p in pairs]
    return pairs


def sft_rows(spec: str, split: str | None = None, limit: int | None = None, as_chat: bool = True) -> list[dict]:
    """Conversations, or prompt/completion pairs (the forms `notos.data.pairs.to_sft` takes)."""
    out = [to_sft(row, file, as_chat) for file, row in read_rows(spec, split, limit)]
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
