"""Routing: send each row (or each batch) to some of a step's children.

`a >> sample_n(3, per="row") >> [g1, ..., g6]` sends every row to 3 of the 6 generators — the
`sample_n_steps` of the UltraFeedback replication. Each row draws its own 3, from a hash of
(seed, row id): a rerun or a resume draws the same, whatever the batch size, and the models
spread evenly over the prompts even with large batches (the shipped recipe routes this way).
`per="batch"`, the default for pipelines written before per-row routing, draws once per batch
index: every row of a batch goes the same way, and small batches are needed to spread models.

Every child still receives every batch index — the rows routed to it, possibly none — so each
(step, batch) is computed and committed exactly once, as the planner and store expect.
"""

from __future__ import annotations

import hashlib
import random

from notos.errors import GraphError
from notos.pipeline.step import Step

PER = ("row", "batch")


def choose_branches(key: int | str, n_children: int, n: int, seed: int | str = 0) -> list[int]:
    """Indices of the children that receive `key` (a row id, or a batch index), sorted."""
    rng = random.Random(f"{seed}:{key}")
    return sorted(rng.sample(range(n_children), n))


def draw(row_id: str, n_children: int, n: int, seed: int | str = 0) -> list[int]:
    """`choose_branches` for one row, ~5x cheaper: a hash of (seed, row id) drives a partial
    Fisher-Yates shuffle (no Random object per row). Stable across processes and versions."""
    digest = hashlib.blake2b(f"{seed}:{row_id}".encode(), digest_size=16).digest()
    state = int.from_bytes(digest, "big")
    pool = list(range(n_children))
    for i in range(n):
        state, pick = divmod(state, n_children - i)
        pool[i], pool[i + pick] = pool[i + pick], pool[i]
    return sorted(pool[:n])


def route_rows(index: int, rows: list[dict], n_children: int, *, n: int, seed: int | str = 0,
               per: str = "batch") -> list[list[dict]]:
    """The rows each child gets, in input order (a child given none still gets the batch)."""
    if per == "batch":
        chosen = set(choose_branches(index, n_children, n, seed))
        return [rows if i in chosen else [] for i in range(n_children)]
    out: list[list[dict]] = [[] for _ in range(n_children)]
    for row in rows:
        for i in draw(str(row["row_id"]), n_children, n, seed):
            out[i].append(row)
    return out


def sample_n(n: int, *, seed: int | str = 0, per: str = "batch", name: str = "sample_n", **settings) -> Step:
    if not isinstance(n, int) or n < 1:
        raise GraphError(f"step '{name}': option 'n' must be a positive integer")
    if per not in PER:
        raise GraphError(f"step '{name}': option 'per' must be one of {', '.join(PER)}, not {per!r}")
    # `per` is kept only when it is "row": routes written before it keep their fingerprints.
    options = {"n": n, "seed": seed} | ({"per": per} if per != "batch" else {})
    return Step(name=name, kind="route", fn=route_rows, options=options, type_name="sample_n", cache=False, **settings)
