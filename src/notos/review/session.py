"""One review: the data, its audit, the edits log, and what a person sees and changes.

    session = open_session(Path("runs/uf"))
    session.page(sort="chosen", descending=True, flag="any")      # {"total": ..., "rows": [...]}
    session.record("p7")                                          # everything about one prompt
    session.edit({"prompt_id": "p7", "completion_index": 1, "field": "rating_honesty", "new": 2})

Every edit is appended to the log (`notos.data.edits`) under a lock, with the value it replaced
as the session sees it now; the data itself is never written. The list's keys of an edited
prompt (its chosen score, "edited") are refreshed at once.

The server opens it with wait=False: on a first start the list is served while the texts and the
audit are still being read and computed; `page()` and `meta()` say so (`audit_pending`,
`texts_pending`), and what needs them (the record view, edits, flag filters, severity /
disagreement / length sorts, search) waits until they are in.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa

from notos.curate.audit import FLAGS, INFORMATIONAL
from notos.curate.binarize import completion_scores
from notos.data.completions import (
    Completions,
    na_column,
    rating_column,
    rationale_column,
)
from notos.data.edits import MARKS, EditsLog, apply_edits, edit, latest, review_dir
from notos.errors import DataError, NotosError
from notos.review.index import SORTS, RecordIndex
from notos.review.load import Source, data_files, resolve_source
from notos.review.loading import aspects_of, begin
from notos.review.marks import REVIEW_STRATEGIES, pair_indexes, resolve, slim

PAGE_SIZES = (10, 25, 50, 100, 200)
WAIT_S = 600.0  # how long a request waits for the texts or the audit of a first start


def open_session(path: Path, edits_dir: Path | None = None, strategy: str | None = None, seed: int | None = None,
                 cache: bool = True, wait: bool = True):
    """The review of `path`: its completions (from the memory-mapped cache when it is current), the
    audit, the list's keys, and the edits log (REVIEW = edits_dir or beside the data). wait=False
    (the server): return once the list's keys are ready; on a first start the texts and the audit
    follow on a thread (`notos.review.loading`), and a request that needs them waits for them."""
    source = resolve_source(path, strategy, seed)
    if source.strategy not in REVIEW_STRATEGIES:
        raise DataError(f"--strategy {source.strategy}: review shows one pair per prompt "
                        f"(choose from {', '.join(REVIEW_STRATEGIES)})")
    log = EditsLog(Path(edits_dir) if edits_dir else review_dir(source.data_path))
    try:
        log.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{log.folder}: cannot keep the edits log there ({exc.strerror}); pass --edits-dir") from None
    start = begin(source, data_files(source) if cache else None, log.folder / "cache")
    source.completions = Completions(start.table, aspects_of(start.table))
    if not source.completions.aspects and strategy is None:
        source.strategy = "overall"  # TRL pairs: no ratings to average, their scores (or ranks) decide
    session = Session(source, log, texts=start.texts)
    if start.flags is not None:
        session.set_flags(start.flags)
    if start.rest is not None and wait:
        session.finish(start.rest)
    elif start.rest is not None:
        threading.Thread(target=session.finish, args=(start.rest, True), name="notos-review-load", daemon=True).start()
    return session


class Pending(NotosError):
    """A request waited its limit for the texts or the audit of a first start (HTTP 503)."""

    status = 503


class Session:
    def __init__(self, source: Source, log: EditsLog, texts: bool = True):
        self.source, self.log = source, log
        c = source.completions
        self.completions = c
        self.score_kind = "overall" if source.strategy == "overall" else "mean"
        scores = completion_scores(c, self.score_kind) if c.aspects or self.score_kind == "overall" \
            else np.full(c.table.num_rows, np.nan)
        self.index = RecordIndex(c, scores)
        self.lock = threading.Lock()
        # Set once the texts / the audit's flags are in (at once, but on a first start later: `finish`).
        self.texts_ready, self.audit_ready = threading.Event(), threading.Event()
        self.load_error: str | None = None
        if texts:
            self.set_texts(c.table)
        self.entries = log.read()
        self.state = latest(self.entries)
        self.by_prompt: dict[str, list] = {}
        for entry in self.entries:
            self.by_prompt.setdefault(entry["prompt_id"], []).append(entry)
        self._initial_pairs()

    # --- what a first start reads after the list -------------------------------------------

    def finish(self, rest, background: bool = False) -> None:
        """Take in the rest of a first start (`loading.Start.rest`): the texts, if the list was
        built without them, and the audit's flags. In the background a failure is kept and said
        by every request that needs them (and on stderr), instead of leaving them waiting."""
        try:
            table, flags, lengths = rest()
            if table is not None:
                self.set_texts(table, lengths)
            self.set_flags(flags)
        except Exception as exc:  # any failure: a thread that dies silently would leave requests hanging
            if not background:
                raise
            self.load_error = str(exc) or type(exc).__name__
            print(f"error: {self.load_error}", file=sys.stderr)
        finally:
            self.texts_ready.set()
            self.audit_ready.set()

    def set_texts(self, table: pa.Table, lengths: tuple | None = None) -> None:
        self.index.set_texts(table, lengths)  # the same rows: what runs now reads the old table or this one
        with self.lock:
            self.completions = self.source.completions = Completions(table, self.completions.aspects)
        self.texts_ready.set()

    def set_flags(self, flags: pa.Table) -> None:
        with self.lock:
            self.index.set_flags(flags)
        self.audit_ready.set()

    def wait_loaded(self, timeout: float) -> bool:
        """Whether the texts and the audit are in, waiting up to `timeout` seconds for them."""
        return self.texts_ready.wait(timeout) and self.audit_ready.wait(timeout)

    def pending(self) -> dict:
        return {"audit_pending": not self.audit_ready.is_set(), "texts_pending": not self.texts_ready.is_set(),
                "load_error": self.load_error}

    def _wait(self, texts: bool = False, audit: bool = False) -> None:
        """Block a request that needs the texts or the audit until they are in."""
        for needed, event, what in ((texts, self.texts_ready, "the texts are still being read"),
                                    (audit, self.audit_ready, "the audit is still running")):
            if needed and not event.wait(WAIT_S):
                raise Pending(f"{what}; try again in a moment")
        if (texts and not self.index.has_texts) or (audit and not self.index.audited):  # `finish` failed
            raise DataError(f"reading the data failed: {self.load_error}")

    # --- the list --------------------------------------------------------------------------

    def _initial_pairs(self) -> None:
        scores_only = slim(self.completions)  # binarize without carrying the texts along
        edited, forced, _ = apply_edits(scores_only, self.entries) if self.entries else (scores_only, {}, {})
        if self.entries:
            self._apply_ratings_to_index(self.entries)
        pairs = pair_indexes(edited, self.source.strategy, self.source.seed, forced)
        self.pairs = pairs
        chosen_rows = np.full(self.index.n, -1, np.int64)
        ids = [pid for pid, (c, _) in pairs.items() if c is not None and pid in self.index.position]
        if ids:
            rows = self.index.rows_for(pa.array(ids, pa.string()), pa.array([pairs[p][0] for p in ids], pa.int64()))
            chosen_rows[[self.index.position[p] for p in ids]] = rows
        self.index.set_chosen(chosen_rows)
        for pid in self.by_prompt:
            if pid in self.index.position:
                self.index.edited[self.index.position[pid]] = True

    def page(self, sort="position", descending=False, page=0, size=50, **filters) -> dict:
        """One page of the list. While a first start's audit runs, rows show no severity or flag
        count (None) and `audit_pending` is true; a sort or filter that needs the audit (or the
        texts: length, search) waits for it, as they are never answered from half the data."""
        if sort not in SORTS:
            raise DataError(f"sort '{sort}': choose from {', '.join(SORTS)}")
        size = size if size in PAGE_SIZES else 50
        self._wait(texts=sort == "length" or bool(filters.get("q")),
                   audit=sort in ("severity", "disagreement") or bool(filters.get("flag")))
        pending = self.pending()  # before the rows: an audit done meanwhile is then seen by the next poll
        with self.lock:
            order = self.index.query(sort, descending, **filters)
            chunk = order[page * size:(page + 1) * size]
            rows = [self._list_row(int(p)) for p in chunk]
        return {"total": len(order), "page": page, "size": size, "rows": rows, **pending,
                "ids": [self.index.id_list[int(p)] for p in order[:5000]]}  # j/k walks this list

    def _list_row(self, p: int) -> dict:
        row = self.index.summary_row(p)
        state = self._prompt_state(row["prompt_id"])
        row.update(discarded=state["discarded"], reviewed=state["reviewed"])
        row["chosen"] = self.pairs.get(row["prompt_id"], (None, None))[0]
        return row

    def meta(self) -> dict:
        return {"aspects": self.index.aspects, "sources": self.index.sources, "models": self.index.models,
                "flags": [f for f in FLAGS if f not in INFORMATIONAL], "sorts": list(SORTS), "prompts": self.index.n,
                "completions": int(self.completions.table.num_rows), "strategy": self.source.strategy,
                "log": str(self.log.path), **self.pending()}

    # --- one record ------------------------------------------------------------------------

    def record(self, prompt_id: str) -> dict:
        self._wait(texts=True, audit=True)
        with self.lock:
            return self._record(prompt_id)

    def _record(self, prompt_id: str) -> dict:
        p = self._position(prompt_id)
        rows = self.index.rows_of(p)
        subset = Completions(self.index.table_of(p), self.completions.aspects)
        entries = self.by_prompt.get(prompt_id, [])
        # ratings edited, marks kept apart: a discarded record still shows its completions
        rated = apply_edits(subset, [e for e in entries if e["field"].startswith("rating_")])[0]
        forced = apply_edits(subset, [e for e in entries if e["field"] in MARKS])[1]
        machine = pair_indexes(rated, self.source.strategy, self.source.seed).get(prompt_id, (None, None))
        current = resolve(machine, forced[prompt_id], self._scores(rated)) if prompt_id in forced else machine
        completions = [self._completion(prompt_id, int(row), original, now)
                       for row, original, now in zip(rows, subset.table.to_pylist(), rated.table.to_pylist())]
        state = self._prompt_state(prompt_id)
        first = completions[0] if completions else {}
        return {"prompt_id": prompt_id, "prompt": first.pop("prompt", ""), "source": first.pop("source", None),
                "completions": completions, "aspects": self.completions.aspects, "chosen": current[0],
                "rejected": current[1], "machine": {"chosen": machine[0], "rejected": machine[1]},
                "forced": forced.get(prompt_id, {}), "strategy": self.source.strategy, **state,
                "history": entries[-50:]}

    def _completion(self, prompt_id: str, row: int, original: dict, now: dict) -> dict:
        index = original["completion_index"]
        aspects = []
        for a in self.completions.aspects:
            aspects.append({
                "aspect": a, "rating": now[rating_column(a)], "na": bool(now[na_column(a)]),
                "original": None if original[na_column(a)] else original[rating_column(a)],
                "edited": (prompt_id, index, rating_column(a)) in self.state,
                "rationale": original.get(rationale_column(a)),
            })
        info = self.index.flag_info.get(row, {"flags": [], "reasons": [], "severity": 0.0})
        verdict = self.state.get((prompt_id, index, "flag"))
        return {"index": index, "model": original["model"], "principle": original.get("principle"),
                "response": original["response"],
                "overall_score": original["overall_score"], "critique": original["critique"], "ratings": aspects,
                "flags": [{"flag": f, "reason": r} for f, r in zip(info["flags"], info["reasons"])],
                "severity": info["severity"], "verdict": verdict["new"] if verdict else None,
                "prompt": original["prompt"], "source": original["source"]}

    def _scores(self, c: Completions) -> dict:
        scores = completion_scores(c, self.score_kind) if c.table.num_rows else []
        return dict(zip(c.table.column("completion_index").to_pylist(), scores))

    def _prompt_state(self, prompt_id: str) -> dict:
        get = lambda field: self.state.get((prompt_id, None, field))
        discard, note, reviewed = get("discard"), get("note"), get("reviewed")
        return {"discarded": bool(discard and discard["new"]), "note": note["new"] if note else "",
                "reviewed": bool(reviewed and reviewed["new"]) or prompt_id in self.by_prompt}

    def _position(self, prompt_id: str) -> int:
        if prompt_id not in self.index.position:
            raise DataError(f"no record with prompt_id '{prompt_id}'")
        return self.index.position[prompt_id]

    # --- edits -----------------------------------------------------------------------------

    def edit(self, payload: dict) -> dict:
        """Append one edit (old value filled in from what the session shows now); the record after it."""
        pid = str(payload.get("prompt_id", ""))
        field = payload.get("field")
        index = payload.get("completion_index")
        self._wait(texts=True, audit=True)  # the old value is what the record view shows
        with self.lock:
            before = self._record(pid)
            entry = edit(pid, field, payload.get("new"), old=_old_value(before, field, index),
                         completion_index=index, note=payload.get("note"))
            if index is not None and index not in [c["index"] for c in before["completions"]]:
                raise DataError(f"prompt '{pid}' has no completion {index}")
            self.log.append([entry])
            self.entries.append(entry)
            self.by_prompt.setdefault(pid, []).append(entry)
            self.state.update(latest([entry]))
            if field.startswith("rating_"):
                self._apply_ratings_to_index([entry])
            after = self._record(pid)
            p = self._position(pid)
            self.index.edited[p] = True
            self._refresh_chosen(pid, p, after)
            return after

    def _refresh_chosen(self, pid: str, p: int, record: dict) -> None:
        chosen = record["chosen"] if not record["discarded"] else None
        self.pairs[pid] = (chosen, record["rejected"])
        by_index = {c["index"]: c for c in record["completions"]}
        if chosen is None:
            self.index.chosen_score[p] = np.nan
        else:
            ratings = [a["rating"] for a in by_index[chosen]["ratings"] if a["rating"] is not None]
            value = by_index[chosen]["overall_score"] if self.score_kind == "overall" else \
                (sum(ratings) / len(ratings) if ratings else None)
            self.index.chosen_score[p] = np.nan if value is None else value
        self.index._sorted.pop(("chosen", True), None)
        self.index._sorted.pop(("chosen", False), None)

    def _apply_ratings_to_index(self, entries: list[dict]) -> None:
        """Rating filters see edited ratings (the keys array is edited in place)."""
        for entry in entries:
            aspect = entry["field"][len("rating_"):] if entry["field"].startswith("rating_") else None
            if aspect not in self.index.aspects or entry["prompt_id"] not in self.index.position:
                continue
            rows = self.index.rows_for(pa.array([entry["prompt_id"]]), pa.array([entry["completion_index"]], pa.int64()))
            self.index.ratings[rows[0], self.index.aspects.index(aspect)] = np.nan if entry["new"] is None else entry["new"]

    def summary(self) -> dict:
        with self.lock:
            prompts = set(self.by_prompt)
            changed = {pid for (pid, _, field) in self.state if field.startswith("rating_") or field in MARKS}
            discarded = {pid for (pid, _, field), e in self.state.items() if field == "discard" and e["new"]}
            verdicts = [e["new"] for (_, _, field), e in self.state.items() if field == "flag"]
        confirmed, overruled = verdicts.count("confirmed"), verdicts.count("overruled")
        return {"records": self.index.n, "reviewed": len(prompts), "edited": len(changed), "discarded": len(discarded),
                "flags_confirmed": confirmed, "flags_overruled": overruled, "edits": len(self.entries),
                "flag_precision": round(confirmed / (confirmed + overruled), 3) if confirmed + overruled else None}


def _old_value(record: dict, field, index):
    if not isinstance(field, str):
        return None
    if field.startswith("rating_"):
        for c in record["completions"]:
            if c["index"] == index:
                return next((a["rating"] for a in c["ratings"] if rating_column(a["aspect"]) == field), None)
        return None
    if field in MARKS:
        return record[field]
    if field == "flag":
        return next((c["verdict"] for c in record["completions"] if c["index"] == index), None)
    return {"discard": record["discarded"], "note": record["note"] or None, "reviewed": record["reviewed"]}.get(field)
