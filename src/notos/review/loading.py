"""How the review gets its data: from the cache when it is current, else the list's keys first
and the rest after, so a first start shows the list in a second or two.

    start = begin(source, files, folder)   # Start(table, texts, flags, rest)
    table, flags, lengths = start.rest()   # when there is a rest: the texts (or None), the flags, and
                                           # each row's response and prompt length (or None)

Three ways, fastest first:
- the cache is current (`notos.review.cache`): the mapped table and its flags; no rest;
- UltraFeedback records in Parquet, the shape whose nested texts take most of a first start to
  decode: `notos.curate.scan` reads at once only the leaves the list's keys need (ids, models,
  critique scores, ratings, the prompt text: about a tenth of the bytes). The rest streams the
  texts a batch at a time into the cache file and audits them AUDIT_ROWS at a time (the audit
  looks at one prompt at a time, and a batch holds whole records: the flags equal one audit of
  the whole), never holding the decoded table;
- anything else: read whole, as before (a child process writes the cache for big files); the
  rest is the audit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from notos.curate.audit import audit
from notos.data.completions import Completions
from notos.errors import DataError
from notos.review import cache
from notos.review.load import Source, principles, read_source

TEXT_BATCH_ROWS = 2048  # records per batch of texts (~20 MB decoded at UltraFeedback's sizes)
# Completions audited at once: the audit's lexicon compiles its regexes per call, so 8,192-row
# audits cost twice the CPU of 32,768-row ones (64k x 4: 2.9 s against 1.4 s).
AUDIT_ROWS = 32_768
FLAG_ORDER = [("severity", "descending"), ("prompt_id", "ascending"), ("completion_index", "ascending")]


@dataclass
class Start:
    table: pa.Table  # the completions; texts False: response, critique, rationales (and principle) left out
    texts: bool
    flags: pa.Table | None  # None: the rest computes them
    rest: Callable[[], tuple] | None = None  # -> (the table with texts or None, flags, lengths or None)


def begin(source: Source, files: list[Path] | None, folder: Path) -> Start:
    """What the list can show now, and what is left to read and audit (see the module doc)."""
    options = {"read_from": str(source.read_from), "format": source.format}
    key = cache.cache_key(files, options) if files else None
    if key is not None:
        try:
            hit = cache.load(folder, key)
        except OSError:  # no room for a cache folder: serve from memory, as without a cache
            key, hit = None, None
        if hit is not None:
            return Start(hit[0], True, hit[1])
    stream = parquet_records(source)
    if stream is not None:
        prompts = stream.prompts().combine_chunks()  # one chunk: the keys' prompt column points into it
        parts = [batch.table for batch in stream.completions(prompts, texts=False)]
        if parts:
            keys = _with_prompts(pa.concat_tables(parts), prompts)
            keep = folder if key is not None else None
            return Start(keys, False, None, lambda: texts_and_flags(stream, prompts, keys, keep, key, source.read_from))
    table, key = _read_whole(source, folder, key, options)
    return Start(table, True, None, lambda: (None, _audit_and_keep(table, folder, key), None))


def parquet_records(source: Source):
    """A `notos.curate.scan` source over UltraFeedback records in Parquet files of one schema, or
    None for any other input (read whole)."""
    from notos.curate.scan import open_input
    from notos.data.locate import locate
    from notos.data.records import detect_format

    try:
        location = locate(source.read_from)
        if location.kind in ("hub", "saved") or location.format != "parquet" or not location.files:
            return None
        schemas = [pq.read_schema(file) for file in location.data_files()]
        if any(schema != schemas[0] for schema in schemas[1:]):
            return None  # parts that differ: the whole-table reader merges them
        shape = source.format
        if shape == "auto":
            shape = detect_format(schemas[0].empty_table(), str(source.read_from))
        return open_input(source.read_from, shape, batch_size=None) if shape == "ultrafeedback" else None
    except (DataError, pa.ArrowException, OSError):
        return None  # whatever is wrong, the whole-table reader says it in its own words


def _with_prompts(keys: pa.Table, prompts: pa.Table) -> pa.Table:
    """The keys' prompt column (the list shows a prompt's start) as indexes into the prompts table:
    each prompt once, not copied for every completion."""
    rows = pc.index_in(keys.column("prompt_id"), value_set=prompts.column("prompt_id"))
    prompt = pa.DictionaryArray.from_arrays(_combined(rows), _combined(prompts.column("prompt")))
    return keys.set_column(keys.schema.get_field_index("prompt"), "prompt", prompt)


def texts_and_flags(stream, prompts: pa.Table, keys: pa.Table, folder: Path | None, key: dict | None,
                    path: Path) -> tuple[pa.Table, pa.Table, tuple]:
    """(the completions with their texts, row for row as `keys`; the audit's flags; each row's
    response and prompt length), written to the cache and mapped when there is one, else held in
    memory. The lengths are counted as the batches go by: counted on the mapped table they would
    bring all of its texts into the server's memory at once."""
    if folder is not None:
        try:
            with cache.appender(folder) as append:
                flags, lengths = _stream(stream, prompts, keys, path, append)
            table = _same_rows(cache.mapped(folder), keys, path)
        except OSError:  # a full disk: hold the texts in memory, as without a cache
            folder = None
        else:
            _keep_flags(folder, key, flags)
            return table, flags, lengths
    parts: list[pa.Table] = []
    flags, lengths = _stream(stream, prompts, keys, path, parts.append)
    return _same_rows(pa.concat_tables(parts), keys, path), flags, lengths


def _stream(stream, prompts: pa.Table, keys: pa.Table, path: Path, append) -> tuple[pa.Table, tuple]:
    """append() every batch of completions, texts included; the audit's flags of them all, and
    each row's response and prompt length."""
    principle = principles(path, keys.num_rows)  # one small leaf, read whole and cut like the batches
    stream.batch_size = TEXT_BATCH_ROWS
    found, held, start, batches, responses, prompt_lengths = [], [], 0, 0, [], []
    for batch in stream.completions(prompts):
        batches += 1
        table = batch.table
        responses.append(_lengths(table.column("response")))
        prompt_lengths.append(_lengths(table.column("prompt")))
        if principle is not None:
            table = table.append_column("principle", principle.slice(start, table.num_rows))
        start += table.num_rows
        append(table)
        held.append(table)
        if sum(t.num_rows for t in held) >= AUDIT_ROWS:
            found.append(flags_of(pa.concat_tables(held)))
            held = []
    if batches == 0:  # the keys came in batches from these files: now there are none
        raise DataError(f"{path}: the data changed while it was read; start the review again")
    if held:
        found.append(flags_of(pa.concat_tables(held)))
    flags = pa.concat_tables(found)
    flags = flags.take(pc.sort_indices(flags, FLAG_ORDER))  # worst first, as one audit of the whole orders them
    return flags, (np.concatenate(responses), np.concatenate(prompt_lengths))


def _lengths(texts) -> np.ndarray:
    return pc.fill_null(pc.utf8_length(texts), 0).to_numpy().astype(np.int64)


def _same_rows(table: pa.Table, keys: pa.Table, path: Path) -> pa.Table:
    """The index was built on `keys`: the texts must be the same rows in the same order."""
    if table.num_rows != keys.num_rows or not table.column("prompt_id").equals(keys.column("prompt_id")):
        raise DataError(f"{path}: the data changed while it was read; start the review again")
    return table


def _read_whole(source: Source, folder: Path, key: dict | None, options: dict):
    """(the completions, read whole; the cache key, None where nothing can be cached)."""
    if key is not None:
        try:
            return cache.build(folder, options, sum(size for _, size, _ in key["files"])), key
        except OSError:  # a full disk: serve from memory, as without a cache
            pass
    return read_source(source).completions.table, None


def _audit_and_keep(table: pa.Table, folder: Path, key: dict | None) -> pa.Table:
    flags = flags_of(table)
    _keep_flags(folder, key, flags)
    return flags


def _keep_flags(folder: Path, key: dict | None, flags: pa.Table) -> None:
    if key is None:
        return
    try:
        cache.finish(folder, key, flags)
    except OSError:
        pass  # a full disk: the cache stays incomplete, and the next start audits again


def _combined(values):
    """One array (one chunk is taken as it is: combine_chunks would copy it)."""
    if not isinstance(values, pa.ChunkedArray):
        return values
    return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()


def flags_of(table: pa.Table) -> pa.Table:
    """The audit's flags (`notos.curate.audit`); none for data without aspect ratings (TRL pairs)."""
    completions = Completions(table, aspects_of(table))
    return audit(completions)[0] if completions.aspects else no_flags()


def aspects_of(table: pa.Table) -> list[str]:
    return [name[len("rating_"):] for name in table.column_names if name.startswith("rating_")]


def no_flags() -> pa.Table:
    return pa.table({"prompt_id": pa.array([], pa.string()), "completion_index": pa.array([], pa.int32()),
                     "severity": pa.array([], pa.float64()), "flags": pa.array([], pa.list_(pa.string())),
                     "reasons": pa.array([], pa.list_(pa.string()))})
