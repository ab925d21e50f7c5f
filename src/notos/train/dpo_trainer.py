"""TRL's DPOTrainer plus the two things trl 1.16 lacks that the seed recipes need:

- `max_prompt_length`: the Zephyr recipe cut prompts to 512 tokens (keeping their end, where
  the question is); trl 1.16 only has `max_length` for the whole sequence.
- reference log-probs that outlive the run: TRL's `precompute_ref_log_probs` keeps them in the
  `datasets` cache of the tokenized data, which for in-memory data is a temporary file gone at
  exit. Here they are written beside the data, keyed by the reference model's weights (TRL's
  own hash) and the tokenized pairs, so a rerun, a resume or a sweep over beta reuses them.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def notos_dpo_trainer(**kwargs):
    """Build the trainer; kwargs are DPOTrainer's plus max_prompt_length and ref_cache_dir."""
    from trl import DPOTrainer

    class NotosDPOTrainer(DPOTrainer):
        def __init__(self, *args, max_prompt_length=None, ref_cache_dir=None, **rest):
            # Set before TRL's __init__, which prepares the data and precomputes through the hooks below.
            self.notos_max_prompt_length = max_prompt_length
            self.notos_ref_cache_dir = Path(ref_cache_dir) if ref_cache_dir else None
            self.notos_ref_logps = None  # "computed" | "reused", with the file: for the run summary
            super().__init__(*args, **rest)

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            keep = self.notos_max_prompt_length
            if keep:
                dataset = dataset.map(lambda ex: {"prompt_ids": ex["prompt_ids"][-keep:]}, desc="Cutting prompts")
            return dataset

        def _precompute_ref_logps(self, dataset, name, batch_size):
            if self.notos_ref_cache_dir is None:
                return super()._precompute_ref_logps(dataset, name, batch_size)
            path = self.notos_ref_cache_dir / f"ref-logps-{self._ref_key(dataset)}.parquet"
            if path.exists():
                self.notos_ref_logps = ("reused", str(path))
                return _with_columns(dataset, path)
            result = super()._precompute_ref_logps(dataset, name, batch_size)
            if self.accelerator.is_main_process:
                _save_columns(result, path)
            self.notos_ref_logps = ("computed", str(path))
            return result

        def _ref_key(self, dataset) -> str:
            digest = hashlib.sha256()
            digest.update(str(self._precompute_model_hash).encode())
            digest.update(repr((self.args.max_length, self.args.truncation_mode, self.ld_alpha, self.args.bf16,
                                self.args.fp16)).encode())
            table = dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"]).flatten_indices().data.table
            for column in table.columns:
                for chunk in column.chunks:
                    for buffer in chunk.buffers():
                        if buffer is not None:
                            digest.update(memoryview(buffer))
            return digest.hexdigest()[:32]

    return NotosDPOTrainer(**kwargs)


def _with_columns(dataset, path: Path):
    from datasets import Dataset, concatenate_datasets

    cached = Dataset.from_parquet(str(path), keep_in_memory=True)
    return concatenate_datasets([dataset, cached], axis=1)


def _save_columns(result, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: list(result[c]) for c in ("ref_chosen_logps", "ref_rejected_logps")})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        pq.write_table(table, scratch)
        scratch.replace(path)
    except OSError as exc:  # a read-only data folder: train on, just without the reuse
        print(f"notos: cannot keep reference log-probs in {path.parent} ({exc})", file=sys.stderr)
