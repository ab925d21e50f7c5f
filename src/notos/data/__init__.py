"""The floor under the engine: what a path holds (`locate`), readers and writers (JSONL, Parquet,
CSV, Hugging Face datasets), the known record formats, atomic writes. Imports nothing from notos
but `notos.errors`.

    locate.py       what a path holds: a file, parts, a run folder, a curate output, a saved dataset, hf://
    io.py           rows in batches (pipelines), write_rows
    tables.py       one Arrow table (curation), write_table
    records.py      UltraFeedback records, the generic form -> the completions table (completions.py)
    pairs.py        TRL's preference pairs and SFT examples, row by row
    row_ids.py      stable row ids
    alpaca_eval.py, mt_bench.py   the evaluation benchmarks' files
    atomic.py       atomic_write_bytes, replace_folder
"""

from notos.data.io import count_rows, iter_batches, read_rows, write_rows
from notos.data.locate import Location, locate
from notos.data.row_ids import assign_row_ids

__all__ = ["Location", "assign_row_ids", "count_rows", "iter_batches", "locate", "read_rows", "write_rows"]
