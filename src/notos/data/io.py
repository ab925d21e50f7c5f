"""Read and write rows as JSONL, Parquet, CSV or Hugging Face `datasets`.

Readers stream batches of plain dicts so a pipeline's memory stays flat whatever the file
size; what a path holds (a file, a folder of parts, a run or curate folder, a saved dataset,
hf://) is `locate`'s call. Every failure a user can cause becomes a one-line `DataError`
naming the file.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from notos.data.atomic import atomic_file
from notos.data.locate import HUB_PREFIX, SUFFIXES, locate
from notos.errors import DataError

FORMATS = ("jsonl", "parquet", "csv", "hf", "hub")


def iter_batches(path: str, batch_size: int = 1000, split: str | None = None) -> Iterator[list[dict]]:
    """Yield lists of row dicts from whatever `path` holds (see `locate`), at most `batch_size` each."""
    location = locate(path)
    if location.kind == "hub":
        yield from _iter_hub(str(path)[len(HUB_PREFIX):], batch_size, split)
    elif location.kind == "saved":
        yield from _iter_saved_dataset(str(path), batch_size, split)
    else:
        for file in location.data_files():
            yield from _iter_file(file, location.format, batch_size)


def _iter_file(file: Path, fmt: str, batch_size: int) -> Iterator[list[dict]]:
    path = str(file)
    if fmt == "jsonl":
        yield from _iter_jsonl(path, batch_size)
    elif fmt == "json":
        yield from _chunks(_read_json_array(path), batch_size)
    elif fmt == "parquet":
        yield from _iter_parquet(file, batch_size)
    else:
        yield from _iter_csv(path, batch_size)


def read_rows(path: str, split: str | None = None) -> list[dict]:
    """All rows of a file as dicts (for small files: benchmark prompts, seeds, configs)."""
    return [row for batch in iter_batches(path, 10_000, split) for row in batch]


def read_option_file(path, option: str) -> list[dict]:
    """The rows of a file a command-line option names; a missing one is an error naming the option."""
    if not Path(path).is_file():
        raise DataError(f"{option} {path}: no such file")
    return read_rows(str(path))


def count_rows(path: str) -> int | None:
    """Row count without reading the data where the format allows (for progress bars)."""
    try:
        location = locate(path)
        if location.kind in ("hub", "saved"):
            return None
        files = location.data_files()
        if location.format == "parquet":
            return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if location.format == "jsonl":
            total = 0
            for file in files:
                with open(file, "rb") as fh:
                    total += sum(1 for line in fh if line.strip())
            return total
    except (OSError, pa.ArrowException, DataError):
        return None
    return None


def _chunks(rows: list[dict], size: int) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _iter_jsonl(path: str, batch_size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    seen_any = False
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # tolerate a byte-order mark
            except UnicodeDecodeError:
                raise DataError(f"{path}: line {number} is not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is a JSON {type(row).__name__}, expected an object")
            seen_any = True
            batch.append(row)
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch
    if not seen_any:
        raise DataError(f"{path}: no rows (only blank lines)")


def check_utf8(path, chunk_size: int = 1 << 24) -> None:
    """A one-line `DataError` naming the file and line of the first byte that is not UTF-8 (for
    readers that would pass it through silently or fail without naming the place: Arrow's JSON
    reader, a whole-file decode). Reads in chunks: memory stays flat whatever the file size."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # exc.object: the bytes held back from the chunk before (part of one character,
                # no newline) and this chunk
                line += exc.object[: exc.start].count(b"\n")
                raise DataError(f"{path}: line {line} is not valid UTF-8") from None
            if not chunk:
                return
            line += chunk.count(b"\n")


def _read_json_array(path: str) -> list[dict]:
    check_utf8(path)
    text = Path(path).read_bytes().decode("utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file may also be JSON lines.
        if "\n" in text.strip():
            return [row for batch in _iter_jsonl(path, 10_000) for row in batch]
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON array of objects")
    if not data:
        raise DataError(f"{path}: no rows (empty array)")
    return data


def _iter_parquet(file: Path, batch_size: int) -> Iterator[list[dict]]:
    try:
        reader = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{file}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    for record_batch in reader.iter_batches(batch_size=batch_size):
        yield record_batch.to_pylist()


def _iter_csv(path: str, batch_size: int) -> Iterator[list[dict]]:
    import pyarrow.csv as pacsv

    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False),
        )
        binary = [f.name for f in reader.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        if binary:
            raise DataError(f"{path}: not valid UTF-8 (column {binary[0]})")
        batch: list[dict] = []
        for record_batch in reader:
            batch.extend(record_batch.to_pylist())
            while len(batch) >= batch_size:
                yield batch[:batch_size]
                batch = batch[batch_size:]
        if batch:
            yield batch
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8 (header)") from None
    except pa.ArrowInvalid as exc:
        message = str(exc).splitlines()[0]
        if "UTF8" in message or "utf8" in message.lower():
            raise DataError(f"{path}: not valid UTF-8 ({message})") from None
        raise DataError(f"{path}: malformed CSV ({message})") from None


def _iter_saved_dataset(path: str, batch_size: int, split: str | None) -> Iterator[list[dict]]:
    import datasets

    try:
        data = datasets.load_from_disk(path)
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"{path}: not a saved dataset ({exc})") from None
    yield from _iter_dataset(data, path, batch_size, split)


def _iter_hub(name: str, batch_size: int, split: str | None) -> Iterator[list[dict]]:
    """Stream a dataset from the Hugging Face Hub (`hf://owner/name[:config]`)."""
    import datasets

    config = None
    if ":" in name:
        name, config = name.split(":", 1)
    try:
        data = datasets.load_dataset(name, config, split=split or "train", streaming=True)
    except Exception as exc:  # the hub raises many types; all mean "could not load it"
        raise DataError(f"hf://{name}: could not load from the Hugging Face Hub ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    batch: list[dict] = []
    for row in data:
        batch.append(row)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _iter_dataset(data, path: str, batch_size: int, split: str | None) -> Iterator[list[dict]]:
    import datasets

    if isinstance(data, datasets.DatasetDict):
        if split is None:
            if len(data) != 1:
                raise DataError(f"{path}: dataset has splits {', '.join(data)}; choose one with split=")
            split = next(iter(data))
        if split not in data:
            raise DataError(f"{path}: no split '{split}' (splits: {', '.join(data)})")
        data = data[split]
    arrow = data.with_format("arrow")
    for start in range(0, len(data), batch_size):
        yield arrow[start : start + batch_size].to_pylist()


def write_rows(path: str, rows: list[dict] | pa.Table) -> Path:
    """Write rows atomically (temp file, fsync, rename) as JSONL, Parquet, CSV or a saved dataset.

    A path ending in `/` or without a known suffix is written as a saved `datasets` folder.
    """
    if isinstance(rows, pa.Table):
        table = rows
    else:
        names = list(dict.fromkeys(k for r in rows for k in r))
        try:
            table = pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows])
        except pa.ArrowException as exc:
            table = None
            if SUFFIXES.get(Path(path).suffix.lower()) not in ("jsonl", "json"):
                raise DataError(f"{path}: cannot write these rows ({str(exc).splitlines()[0]})") from None
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fmt = SUFFIXES.get(target.suffix.lower(), "hf")
    if fmt == "hf":
        import datasets

        datasets.Dataset(table).save_to_disk(str(target))
        return target
    try:
        with atomic_file(target) as tmp:
            _write_file(tmp, fmt, table, rows, delimiter="\t" if target.suffix.lower() == ".tsv" else ",")
    except pa.ArrowException as exc:
        raise DataError(f"{path}: cannot write as {fmt} ({str(exc).splitlines()[0]})") from None
    return target


def _write_file(tmp: Path, fmt: str, table: pa.Table | None, rows, delimiter: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, tmp)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, tmp, pacsv.WriteOptions(delimiter=delimiter))
    else:
        plain = table.to_pylist() if table is not None and isinstance(rows, pa.Table) else list(rows)
        with open(tmp, "w", encoding="utf-8") as fh:
            if fmt == "json":
                json.dump(plain, fh, ensure_ascii=False, default=str)
                fh.write("\n")
            else:
                for row in plain:
                    fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
