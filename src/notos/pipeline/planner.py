"""Resume planning: for one batch, which steps must compute, which load, which skip.

Batches are counted from a segment root (a source, or a global step that re-emits rows). For
batch (index, signature) a step is needed if it is a leaf whose batch is not committed, or if
a child needs its rows to compute; a needed step that has the batch committed loads it
instead of computing, so its own ancestors stay idle. Changing one step's config changes its
fingerprint and its descendants', so only they recompute.

With `retry_failed`, a committed batch that holds failed rows is RETRY: its rows that
succeeded are kept and only the failed ones go through the step again (their parents provide
fresh inputs, retried in turn where they failed upstream).

With `retry_unparsed`, the same holds for rows a step answered but could not read
(`Step.unparsed`: a judge's reply with no readable rating): they are asked again, the rest kept.
"""

from __future__ import annotations

from notos.pipeline.graph import Pipeline
from notos.pipeline.step import Step
from notos.pipeline.store import RunStore

SKIP, LOAD, COMPUTE, RETRY = "skip", "load", "compute", "retry"


class Planner:
    def __init__(self, pipeline: Pipeline, store: RunStore, fingerprints: dict[str, str], retry_failed: bool = False,
                 retry_unparsed: bool = False):
        self.pipeline, self.store, self.fps = pipeline, store, fingerprints
        self.retry_failed, self.retry_unparsed = retry_failed, retry_unparsed
        self._unread: dict[tuple[str, int, str], set[str]] = {}
        self._complete: dict[str, bool] = {}
        self.segments: dict[str, list[Step]] = {}
        for step in pipeline.steps:
            self.segments.setdefault(pipeline.segment_root(step).name, []).append(step)

    def caches(self, step: Step) -> bool:
        if not step.children:
            return True  # leaves always commit: they are the result
        return step.cache and step.kind not in ("source", "route")  # sources are re-read, routes are free

    def committed(self, step: Step, index: int, sig: str) -> bool:
        return self.caches(step) and self.store.has(step.name, self.fps[step.name], index, sig)

    def done(self, step: Step, index: int, sig: str) -> bool:
        """Committed, and not a batch to retry."""
        return self.committed(step, index, sig) and not self.to_retry(step, index, sig)

    def to_retry(self, step: Step, index: int, sig: str) -> bool:
        if self.retry_failed and self.store.has_failures(step.name, self.fps[step.name], index, sig):
            return True
        return self.retry_unparsed and bool(self.unread_ids(step, index, sig))

    def unread_ids(self, step: Step, index: int, sig: str) -> set[str]:
        """With `retry_unparsed`: the rows of a batch that this step, or a step before it in its
        segment, answered but could not read. This step computes them again (its own ones asked
        anew; the others because their inputs change); it keeps the rest."""
        if not self.retry_unparsed:
            return set()
        ids: set[str] = set()
        for s in self._upstream(step):
            ids |= self.own_unread_ids(s, index, sig)
        return ids

    def own_unread_ids(self, step: Step, index: int, sig: str) -> set[str]:
        """The rows of a committed batch this step could not read (each batch read once, and only
        by a `retry_unparsed` run)."""
        key = (step.name, index, sig)
        if key not in self._unread:
            found: set[str] = set()
            if self.retry_unparsed and step.unparsed is not None and self.committed(step, index, sig):
                rows = self.store.load(step.name, self.fps[step.name], index, sig)
                found = {r["row_id"] for r in rows if not r.get("_error") and step.unparsed(r)}
            self._unread[key] = found
        return self._unread[key]

    def _upstream(self, step: Step) -> list[Step]:
        """This step and the steps before it that see the same batches (its segment)."""
        root = self.pipeline.segment_root(step)
        seen, stack = {}, [step]
        while stack:
            s = stack.pop()
            if s.name not in seen and self.pipeline.segment_root(s) is root:
                seen[s.name] = s
                stack.extend(s.parents)
        return list(seen.values())

    def global_complete(self, step: Step) -> bool:
        if step.name not in self._complete:
            fp = self.fps[step.name]
            complete = self.store.global_parts(step.name, fp) is not None
            if complete and self.retry_failed and self.store.global_failed(step.name, fp):
                complete = False
            self._complete[step.name] = complete
        return self._complete[step.name]

    def actions(self, root: Step, index: int, sig: str) -> dict[str, str]:
        """Action for every step of `root`'s segment on batch (index, sig)."""
        demand: dict[str, bool] = {}
        for step in reversed(self.segments[root.name]):
            needed = not step.children and not self.done(step, index, sig)
            for child in step.children:
                if child.kind == "global":
                    needed = needed or not self.global_complete(child)
                elif demand.get(child.name) and not self.done(child, index, sig):
                    needed = True
            demand[step.name] = needed
        actions = {}
        for name, needed in demand.items():
            step = self.pipeline.by_name[name]
            if not needed:
                actions[name] = SKIP
            elif self.to_retry(step, index, sig):
                actions[name] = RETRY
            elif self.committed(step, index, sig):
                actions[name] = LOAD
            else:
                actions[name] = COMPUTE
        return actions
