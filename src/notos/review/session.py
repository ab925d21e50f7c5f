"""One review: the data, its audit, the edits log, and what a person sees and changes.

    session = open_session(Path("runs/uf"))
    session.page(sort="chosen", descending=True, flag="any")      # {"total": ..., "rows": [...]}
    session.record("p7")                                          # everything about one prompt
    session.edit({"prompt_id": "p7", "completion_index": 1, "field": "rating_honesty", "new": 2})

Every edit is appended to the log (`notos.data.edits`) under a lock, with the value it replaced
as the session sees it now; the data itself is never written. The list's keys of an edited
prompt (its chosen score, "edited") are refreshed at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa

from notos.curate.audit import FLAGS, INFORMATIONAL, audit
from notos.curate.binarize import completion_scores
from notos.data.completions import (
    Completions,
    na_column,
    rating_column,
    rationale_column,
)
from notos.data.edits import MARKS, EditsLog, apply_edits, edit, latest, review_dir
from notos.errors import DataError
from notos.review.cache import cached
from notos.review.index import SORTS, RecordIndex
from notos.review.load import Source, data_files, read_source, resolve_source
from notos.review.marks import REVIEW_STRATEGIES, pair_indexes, resolve, slim

PAGE_SIZES = (10, 25, 50, 100, 200)


def open_session(path: Path, edits_dir: Path | None = None, strategy: str | None = None, seed: int | None = None,
                 cache: bool = True):
    """The review of `path`: its completions (from the memory-mapped cache when it is current), the
    audit, the list's keys, and the edits log (REVIEW = edits_dir or beside the data)."""
    source = resolve_source(path, strategy, seed)
    if source.strategy not in REVIEW_STRATEGIES:
        raise DataError(f"--strategy {source.strategy}: review shows one pair per prompt "
                        f"(choose from {', '.join(REVIEW_STRATEGIES)})")
    log = EditsLog(Path(edits_dir) if edits_dir else review_dir(source.data_path))
    try:
        log.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{log.folder}: cannot keep the edits log there ({exc.strerror}); pass --edits-dir") from None
    files = data_files(source) if cache else None

    def read() -> pa.Table:
        return read_source(source).completions.table

    def flags_of(table: pa.Table) -> pa.Table:
        completions = Completions(table, aspects_of(table))
        return audit(completions)[0] if completions.aspects else _no_flags()

    if files:
        options = {"read_from": str(source.read_from), "format": source.format}
        try:
            table, flags = cached(files, log.folder / "cache", options, flags_of)
        except OSError:  # a full disk: serve from memory, as without a cache
            table = read()
            flags = flags_of(table)
    else:
        table = read()
        flags = flags_of(table)
    source.completions = Completions(table, aspects_of(table))
    if not source.completions.aspects and strategy is None:
        source.strategy = "overall"  # TRL pairs: no ratings to average, their scores (or ranks) decide
    return Session(source, log, flags)


class Session:
    def __init__(self, source: Source, log: EditsLog, flags: pa.Table):
        self.source, self.log = source, log
        c = source.completions
        self.completions = c
        self.score_kind = "overall" if source.strategy == "overall" else "mean"
        scores = completion_scores(c, self.score_kind) if c.aspects or self.score_kind == "overall" \
            else np.full(c.table.num_rows, np.nan)
        self.index = RecordIndex(c, flags, scores)
        self.lock = threading.Lock()
        self.entries = log.read()
        self.state = latest(self.entries)
        self.by_prompt: dict[str, list] = {}
        for entry in self.entries:
            self.by_prompt.setdefault(entry["prompt_id"], []).append(entry)
        self._initial_pairs()

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
        if sort not in SORTS:
            raise DataError(f"sort '{sort}': choose from {', '.join(SORTS)}")
        size = size if size in PAGE_SIZES else 50
        with self.lock:
            order = self.index.query(sort, descending, **filters)
            chunk = order[page * size:(page + 1) * size]
            rows = [self._list_row(int(p)) for p in chunk]
        return {"total": len(order), "page": page, "size": size, "rows": rows,
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
                "log": str(self.log.path)}

    # --- one record ------------------------------------------------------------------------

    def record(self, prompt_id: str) -> dict:
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


def aspects_of(table: pa.Table) -> list[str]:
    return [name[len("rating_"):] for name in table.column_names if name.startswith("rating_")]


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


def _no_flags() -> pa.Table:
    return pa.table({"prompt_id": pa.array([], pa.string()), "completion_index": pa.array([], pa.int32()),
                     "severity": pa.array([], pa.float64()), "flags": pa.array([], pa.list_(pa.string())),
                     "reasons": pa.array([], pa.list_(pa.string()))})
