"""All of curation in one read of the input: the engine of `notos curate all` and of every
single `notos curate` command.

    plan = Plan(decontaminate={"benchmark": ["mt_bench/question.jsonl"]}, dedup={},
                audit={}, strategies=[Strategy("mean", "data"), Strategy("overall", "pairs_overall")],
                compare=("overall", "mean"))
    result = run_plan("uf.parquet", "auto", plan, folder)

Order, and what each step reads (`notos.curate.scan`):
  1. the prompts only (text, source, id): decontaminate, then dedup on what is left. Their
     removals are prompt ids; nothing else is held.
  2. the completions, batch by batch, of the prompts kept: audit, each binarization (pairs
     streamed to their Parquet file as they come), the statistics the report draws
     (`notos.curate.tally`), the keys compare needs.
  3. compare on the keys; flags sorted worst first and written; stats.

Every output is written once. Peak memory is the prompts plus one batch of completions plus
the flags and compare keys (a few columns per completion), not the dataset.

`edits` (a review file, `notos.data.edits.apply_edits`): applied to the completions before
audit and binarize; binarize honours what the reviewer forced. The edits module wants the
whole table at once, so with edits the completions are one batch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from notos.curate.memory import release_memory
from notos.curate.scan import open_input
from notos.curate.tally import Tally, fix_shares, merge_counts
from notos.data.completions import Completions


@dataclass
class Strategy:
    strategy: str
    file: str  # output name in the folder, without .parquet
    min_margin: float = 0.0
    seed: int = 0


@dataclass
class Plan:
    decontaminate: dict | None = None  # notos.curate.decontaminate.decontaminate's options
    dedup: dict | None = None  # notos.curate.dedup.deduplicate's options
    audit: dict | None = None  # notos.curate.audit.audit's options
    audit_file: str = "flags"
    keep_file: str | None = None  # write the kept input rows, in the input's shape, here
    strategies: list[Strategy] = field(default_factory=list)
    compare: tuple[str, str] | None = None  # two of the strategies' names
    edits: Path | None = None
    batch_size: int | None = 2048


@dataclass
class Result:
    prompts: int = 0
    completions: int = 0
    removals: pa.Table | None = None
    clusters: pa.Table | None = None
    kept_ids: pa.Array | None = None  # prompt ids kept by decontaminate and dedup
    prompt_ids: pa.Array | None = None  # every input prompt id, in input order
    audit: dict | None = None
    binarize: dict = field(default_factory=dict)
    compare: dict | None = None
    edits: dict | None = None
    tally: Tally | None = None


def run_plan(input_path, format: str, plan: Plan, folder: Path) -> Result:
    source = open_input(input_path, format, None if plan.edits else plan.batch_size)
    prompts = source.prompts()
    result = Result(prompts=prompts.num_rows, prompt_ids=prompts.column("prompt_id"))
    kept = _remove_prompts(prompts, plan, result)
    result.kept_ids = kept.column("prompt_id")
    if plan.keep_file:
        _write_kept(source, prompts, result.kept_ids, folder / f"{plan.keep_file}.parquet")
    if not (plan.audit is not None or plan.strategies):
        return result
    _scan_completions(source, prompts, plan, folder, result)
    return result


def _remove_prompts(prompts: pa.Table, plan: Plan, result: Result) -> pa.Table:
    table = Completions(prompts, [])
    if plan.decontaminate is not None:
        from notos.curate.decontaminate import decontaminate

        options = dict(plan.decontaminate)
        benchmark = options.pop("benchmark")
        table, result.removals = decontaminate(table, benchmark, **options)
        release_memory()
    if plan.dedup is not None:
        from notos.curate.dedup import deduplicate

        table, result.clusters = deduplicate(table, **plan.dedup)
        release_memory()
    return table.table


def _scan_completions(source, prompts: pa.Table, plan: Plan, folder: Path, result: Result) -> None:
    removed = _removed_ids(prompts, result.kept_ids)
    writers: dict[str, pq.ParquetWriter] = {}
    flags_parts, keys = [], {s.strategy: [] for s in plan.strategies}
    tally = None
    # Pairs are written on a thread (Parquet encoding lets go of the GIL) while the next batch is
    # curated; one batch's writes at most are pending, so memory holds one batch more.
    pool, pending = ThreadPoolExecutor(1), None
    try:
        for batch in source.completions(prompts):
            if removed is not None:
                batch = _without(batch, removed)
            if plan.edits:
                batch, forced, result.edits = _apply_edits(batch, plan.edits)
            else:
                forced = None
            tally = tally or Tally(batch.aspects)
            result.completions += batch.table.num_rows
            flagged = None
            if plan.audit is not None:
                flags, summary, flagged = _audit(batch, plan.audit)
                flags_parts.append(flags)
                tally.add_examples(batch, flags)
                result.audit = merge_counts(result.audit, summary)
            tally.add_completions(batch, flagged)
            written = []
            for s in plan.strategies:
                pairs, stats = _binarize(batch, s, forced)
                written.append((folder / f"{s.file}.parquet", pairs))
                tally.add_pairs(s.strategy, pairs)
                keys[s.strategy].append(pairs.select(_compare_keys()))
                result.binarize[s.strategy] = merge_counts(result.binarize.get(s.strategy), stats)
            if pending is not None:
                pending.result()
            pending = pool.submit(_write_all, writers, written)
            release_memory()
        if pending is not None:
            pending.result()
    finally:
        pool.shutdown(wait=True)
        for writer in writers.values():
            writer.close()
    result.tally = tally or Tally([])
    for s in plan.strategies:
        if s.strategy not in result.binarize:  # no completions at all: an empty pairs file still
            _write_empty_pairs(folder / f"{s.file}.parquet")
    if plan.audit is not None:
        _finish_audit(flags_parts, folder / f"{plan.audit_file}.parquet", result)
    if plan.compare:
        from notos.curate.compare import compare

        a, b = plan.compare
        result.compare = compare(_concat(keys[a]), _concat(keys[b]))


def _write_all(writers: dict, tables: list) -> None:
    for path, table in tables:
        _write(writers, path, table)


def _write_kept(source, prompts: pa.Table, kept_ids: pa.Array, path: Path) -> None:
    """The input's rows of the kept prompts, streamed, each with its prompt id (`with_ids`)."""
    from notos.curate.outputs import with_ids

    writers: dict[str, pq.ParquetWriter] = {}
    start = 0
    try:
        for raw in source.raw_batches():
            if source.format == "completions":
                ids = raw.column("prompt_id").cast(pa.string())
            else:
                ids = prompts.column("prompt_id").slice(start, raw.num_rows)
                start += raw.num_rows
            keep = pc.is_in(ids, value_set=kept_ids)
            _write(writers, path, with_ids(raw, ids).filter(keep), keep_metadata=True)
    finally:
        for writer in writers.values():
            writer.close()
    if not writers:
        pq.write_table(prompts.slice(0, 0), path)


def _removed_ids(prompts: pa.Table, kept_ids: pa.Array):
    if len(kept_ids) == prompts.num_rows:
        return None
    return prompts.column("prompt_id").filter(pc.invert(pc.is_in(prompts.column("prompt_id"), value_set=kept_ids)))


def _without(c: Completions, removed) -> Completions:
    from notos.curate.decontaminate import drop_prompts

    return drop_prompts(c, removed)


def _apply_edits(batch: Completions, edits: Path):
    """Edits from a review (the review UI's module: needed with --edits only)."""
    from notos.data.edits import apply_edits

    return apply_edits(batch, edits)


def _audit(batch: Completions, options: dict):
    from notos.curate.audit import audit

    flags, summary = audit(batch, **options)
    flagged = np.zeros(batch.table.num_rows, bool)
    if flags.num_rows:
        from notos.curate.tally import rows_of

        flagged[rows_of(batch.table, flags)] = True
    return flags, summary, flagged


def _finish_audit(parts: list[pa.Table], path: Path, result: Result) -> None:
    from notos.curate.audit import audit

    if parts:
        flags = pa.concat_tables(parts)
    else:  # no completions: the audit's own empty table, for its schema
        from notos.data.completions import completions_from_rows

        flags = audit(completions_from_rows([]))[0]
    order = pc.sort_indices(flags, [("severity", "descending"), ("prompt_id", "ascending"),
                                    ("completion_index", "ascending")])
    pq.write_table(flags.take(order), path)
    result.audit = fix_shares(result.audit or {})


def _binarize(batch: Completions, s: Strategy, forced):
    from notos.curate.binarize import binarize, binarize_stats

    pairs = binarize(batch, s.strategy, min_margin=s.min_margin, seed=s.seed, forced=forced)
    return pairs, binarize_stats(pairs)


def _compare_keys():
    from notos.curate.compare import KEYS

    return list(KEYS) + ["strategy"]


def _concat(parts: list[pa.Table]) -> pa.Table:
    if not parts:
        return pa.table({k: pa.array([], pa.string()) for k in _compare_keys()})
    return pa.concat_tables(parts)


def _write(writers: dict, path: Path, table: pa.Table, keep_metadata: bool = False) -> None:
    if not keep_metadata:
        table = table.replace_schema_metadata(None)  # per-batch stats: the merged ones go to stats.json
    writer = writers.get(str(path))
    if writer is None:
        # Text-heavy pairs: dictionaries do not pay, and LZ4 writes ~2x faster than Snappy.
        writer = writers[str(path)] = pq.ParquetWriter(path, table.schema, compression="lz4", use_dictionary=False)
    elif table.schema != writer.schema:
        table = table.cast(writer.schema)
    writer.write_table(table)


def _write_empty_pairs(path: Path) -> None:
    from notos.curate.binarize import binarize
    from notos.data.completions import completions_from_rows

    pq.write_table(binarize(completions_from_rows([]), "overall").replace_schema_metadata(None), path)
