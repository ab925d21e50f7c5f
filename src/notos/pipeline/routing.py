"""Routing: send each batch to some of a step's children.

`a >> sample_n(3) >> [g1, ..., g6]` sends every batch to 3 of the 6 generators, chosen with a
seeded generator per batch index, so a rerun (or a resume) makes the same choice — the
`sample_n_steps` of the UltraFeedback replication.
"""

import random

from notos.errors import GraphError
from notos.pipeline.step import Step


def choose_branches(batch_index: int, n_children: int, n: int, seed: int | str = 0) -> list[int]:
    """Indices of the children that receive batch `batch_index` (sorted)."""
    rng = random.Random(f"{seed}:{batch_index}")
    return sorted(rng.sample(range(n_children), n))


def sample_n(n: int, *, seed: int | str = 0, name: str = "sample_n", **settings) -> Step:
    if not isinstance(n, int) or n < 1:
        raise GraphError(f"step '{name}': option 'n' must be a positive integer")
    return Step(name=name, kind="route", fn=choose_branches, options={"n": n, "seed": seed}, type_name="sample_n", cache=False, **settings)
