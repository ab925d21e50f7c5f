"""Readers and writers for row data: JSONL, Parquet, CSV and Hugging Face datasets."""

from notos.data.io import count_rows, iter_batches, read_rows, write_rows
from notos.data.row_ids import assign_row_ids

__all__ = ["assign_row_ids", "count_rows", "iter_batches", "read_rows", "write_rows"]
