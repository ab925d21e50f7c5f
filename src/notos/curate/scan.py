"""Read a curation input once, in two projections, in batches.

    source = open_input("uf.parquet", "auto")
    prompts = source.prompts()                    # prompt_id, prompt, source: one row per prompt
    for completions in source.completions(prompts):   # Completions, a few thousand prompts each
        ...
    for raw in source.raw_batches(): ...          # the input's own rows, every column

Why two projections: decontamination and dedup need only the prompt texts (a few % of the
bytes) but all of them at once; audit and binarize need the completions but only one prompt's
at a time. So the prompts are read first (the instruction, source and id columns only) and the
completions after, in batches of records, never holding the responses of the whole file
(at 64k x 4 they are most of the 0.4 GB Parquet, and several GB decoded). Each column is read
once: a completions batch borrows its prompts' text from the prompts table.

Only Parquet files stream (record batches of `batch_size` rows, only the leaves curation reads);
JSONL / JSON and other inputs are read whole with `notos.data.records.read_raw` and then cut
into the same batches. A completions table (an output of notos curate, one row per completion)
is one batch, so no prompt is split.

Prompt ids follow `notos.data.records.prompt_ids`: a `row_id`, `prompt_id` or `id` column, else
the record's position in the whole input (not in its batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from notos.errors import DataError

BATCH_ROWS = 2048
ID_COLUMNS = ("row_id", "prompt_id", "id")
PROMPT_COLUMNS = ("instruction", "prompt")
COMPLETION_FIELDS = ("model", "response", "overall_score", "critique", "annotations")
# Leaves of the annotations curation never reads (the Type lists, the Rationale that explains
# a truthfulness / helpfulness Type rather than the rating).
_SKIPPED_LEAVES = (".Type.", ".Error")
_TYPED_ASPECTS = ("truthfulness", "helpfulness")


@dataclass
class Source:
    path: str
    format: str
    files: tuple[Path, ...]  # Parquet files that stream; empty when the input is read whole
    whole: pa.Table | None = None  # the input read whole (not Parquet)
    batch_size: int = BATCH_ROWS

    def prompts(self) -> pa.Table:
        """prompt_id, prompt, source: one row per record (per prompt of a completions table)."""
        from notos.curate.decontaminate import first_row_per_prompt

        if self.format == "completions":
            table = self._whole(("prompt_id", "prompt", "source"))
            table = table.take(first_row_per_prompt(table))
            return _prompt_table(_text(table, "prompt_id"), _text(table, "prompt"), _optional(table, "source"))
        top = self._top_columns()
        prompt = next((c for c in PROMPT_COLUMNS if c in top), None)
        if prompt is None:
            raise DataError(f"{self.path}: no 'instruction' or 'prompt' column (columns: {', '.join(top)})")
        wanted = [prompt] + [c for c in ("source", *ID_COLUMNS) if c in top]
        table = self._whole(wanted)
        from notos.data.records import prompt_ids

        return _prompt_table(prompt_ids(table, self.path), _text(table, prompt), _optional(table, "source"))

    def completions(self, prompts: pa.Table, aspects=None, texts: bool = True):
        """The completions table, batch by batch, with the prompts' ids and texts from `prompts`.
        texts=False: from Parquet only the leaves a sort needs (model, critique score, ratings);
        response, critique, rationales and the prompt come out null, for a few % of the decoding
        (`prompts` holds each prompt once; repeated per completion it would be copied)."""
        from notos.data.records import normalize

        if self.format == "completions":
            yield normalize(self._whole(None), format="completions", aspects=aspects, origin=self.path)
            return
        start = 0
        for raw in prefetched(self._batches(self._completion_columns(texts))):
            n = raw.num_rows
            part = prompts.slice(start, n)
            start += n
            raw = _drop(raw, ("instruction", "prompt", "source", *ID_COLUMNS))
            prompt = part.column("prompt") if texts else pa.nulls(n, pa.string())
            raw = raw.append_column("prompt_id", part.column("prompt_id")) \
                .append_column("prompt", prompt).append_column("source", part.column("source"))
            yield normalize(raw, format=self.format, aspects=aspects, origin=self.path, texts=texts)

    def raw_batches(self):
        """The input's own rows, every column, batch by batch."""
        yield from self._batches(None)

    # --- reading ---------------------------------------------------------------------------

    def _top_columns(self) -> list[str]:
        if self.whole is not None:
            return self.whole.column_names
        return list(dict.fromkeys(name for f in self.files for name in _parquet(f).schema_arrow.names))

    def _whole(self, columns) -> pa.Table:
        if self.whole is not None:
            return self.whole if columns is None else self.whole.select([c for c in columns if c in self.whole.column_names])
        return pa.concat_tables(list(self._batches(columns)), promote_options="permissive")

    def _batches(self, columns):
        """Record batches as tables; `columns`: top-level names or Parquet leaf paths (None: all)."""
        if self.whole is not None:
            table = self.whole if columns is None else self.whole.select(
                list(dict.fromkeys(c.split(".")[0] for c in columns if c.split(".")[0] in self.whole.column_names)))
            for start in range(0, max(table.num_rows, 1), self.batch_size):
                yield table.slice(start, self.batch_size)
            return
        for file in self.files:
            reader = _parquet(file)
            names = [reader.schema.column(i).path for i in range(len(reader.schema))]
            wanted = None if columns is None else [c for c in columns if c in names or c in reader.schema_arrow.names]
            try:
                yield from _row_group_batches(reader, wanted, self.batch_size)
            except (pa.ArrowException, OSError) as exc:
                raise DataError(f"{file}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None

    def _completion_columns(self, texts: bool = True):
        """The Parquet leaves audit and binarize read, or only the keys' (None: all of them)."""
        if self.whole is not None or not self.files:
            return None
        schema = _parquet(self.files[0]).schema
        paths = [schema.column(i).path for i in range(len(schema))]
        keep = [p for p in paths if (_wanted_leaf if texts else _key_leaf)(p)]
        return keep + [p for p in paths if p.startswith("models.")]


def _wanted_leaf(path: str) -> bool:
    if path.startswith(("responses.", "scores")):  # the generic form
        return True
    if not path.startswith("completions.list.element."):
        return False
    leaf = path[len("completions.list.element."):]
    if leaf.split(".")[0] not in COMPLETION_FIELDS or any(s in "." + leaf + "." for s in _SKIPPED_LEAVES):
        return False
    aspect_field = leaf.split(".")
    # A typed aspect's "Rationale" explains its Type: the rating's own is "Rationale For Rating".
    return not (len(aspect_field) == 3 and aspect_field[1] in _TYPED_ASPECTS and aspect_field[2] == "Rationale")


def _key_leaf(path: str) -> bool:
    """A completion's model, critique score or aspect rating: the small leaves, no text."""
    if not path.startswith("completions.list.element."):
        return False
    leaf = path[len("completions.list.element."):].split(".")
    return leaf in (["model"], ["overall_score"]) or (len(leaf) == 3 and leaf[0] == "annotations"
                                                     and leaf[2].strip().lower() == "rating")


def open_input(path, format: str = "auto", batch_size: int | None = BATCH_ROWS) -> Source:
    """A Source for a path `notos.data.locate` understands. batch_size None: one batch."""
    from notos.data.locate import locate
    from notos.data.records import FORMATS, data_path, detect_format, read_raw

    path = data_path(path)  # an audit folder: the data it audited
    if format not in FORMATS:
        raise DataError(f"{path}: unknown format '{format}' (choose from {', '.join(FORMATS)})")
    location = locate(path)
    if location.kind not in ("hub", "saved") and location.format == "parquet":
        files = location.data_files()
        schema = _parquet(files[0]).schema_arrow
        empty = pa.table({name: pa.nulls(0, schema.field(name).type) for name in schema.names})
        shape = detect_format(empty, str(path)) if format == "auto" else format
        source = Source(str(path), shape, tuple(files), batch_size=batch_size or 1 << 62)
        if shape in ("generic", "rated"):  # no projection: rated columns are lists, and read_raw names the run's aspect
            source.whole = read_raw(path)
        return source
    whole = read_raw(path, only_needed=True)
    shape = detect_format(whole, str(path)) if format == "auto" else format
    return Source(str(path), shape, (), whole, batch_size=batch_size or max(whole.num_rows, 1))


def prefetched(items):
    """The items of an iterator, the next one read on a thread while the caller works on this one:
    Parquet decoding lets go of the GIL, so reading overlaps curation (one batch more in memory)."""
    from concurrent.futures import ThreadPoolExecutor

    done = object()
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(next, items, done)
        while True:
            item = ahead.result()
            if item is done:
                return
            ahead = pool.submit(next, items, done)
            yield item


def _row_group_batches(reader: pq.ParquetFile, columns, batch_size: int):
    """Tables of about batch_size rows, read whole row groups at a time. Why not iter_batches:
    it holds several times a batch in decoded pages (600 MB for 2,000-record batches of
    UltraFeedback against 300 MB this way). A row group far larger than a batch is cut by
    iter_batches after all."""
    groups, rows = [], 0
    for i in range(reader.metadata.num_row_groups):
        size = reader.metadata.row_group(i).num_rows
        if size > 2 * batch_size:
            if groups:
                yield reader.read_row_groups(groups, columns=columns)
                groups, rows = [], 0
            for batch in reader.iter_batches(batch_size=batch_size, row_groups=[i], columns=columns):
                yield pa.Table.from_batches([batch])
            continue
        groups.append(i)
        rows += size
        if rows >= batch_size:
            yield reader.read_row_groups(groups, columns=columns)
            groups, rows = [], 0
    if groups:
        yield reader.read_row_groups(groups, columns=columns)


def _parquet(file) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{file}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _prompt_table(ids, prompts, sources) -> pa.Table:
    # The texts stay in the chunks they were read in: joining them would copy every prompt.
    return pa.table({"prompt_id": _plain(ids), "prompt": prompts, "source": sources})


def _text(table: pa.Table, name: str):
    return table.column(name).cast(pa.string())


def _optional(table: pa.Table, name: str):
    return _text(table, name) if name in table.column_names else pa.nulls(table.num_rows, pa.string())


def _drop(table: pa.Table, names) -> pa.Table:
    return table.drop_columns([n for n in names if n in table.column_names])


def _plain(values):
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
