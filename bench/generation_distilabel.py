#!/usr/bin/env python3
"""The generation-only workload on distilabel 1.5.3 (run with bench/.venv-distilabel):
LoadDataFromDicts >> 3 x TextGeneration(OpenAILLM m1, m2, m3) >> GroupColumns."""

import tempfile
import time

T_START = time.time()

from generation_common import count_valid, instructions, parse_args, report  # noqa: E402


def main():
    args = parse_args((("--input-batch-size",), {"type": int, "default": 50}))
    import logging

    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import GroupColumns, LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    for name in ("httpx2", "httpcore2", "httpx", "httpcore", "openai"):  # per-request INFO logs
        logging.getLogger(name).setLevel(logging.WARNING)
    data = [{"instruction": text} for text in instructions(args.n)]
    bs = args.input_batch_size
    with Pipeline(name="generation-bench", cache_dir=tempfile.mkdtemp(prefix="distilabel-gen-")) as pipeline:
        load = LoadDataFromDicts(name="load_data", data=data, batch_size=bs)
        gens = [TextGeneration(name=f"text_generation_{m}", input_batch_size=bs,
                               llm=OpenAILLM(model=m, base_url=args.base_url, api_key="x",
                                             generation_kwargs={"max_new_tokens": args.max_new_tokens}))
                for m in ("m1", "m2", "m3")]
        group = GroupColumns(name="combine", columns=["generation", "model_name"],
                             output_columns=["generations", "generation_models"], input_batch_size=bs)
        load >> gens >> group
    t0 = time.time()
    distiset = pipeline.run(use_cache=False)
    ds = distiset["default"]["train"]
    report(args, T_START, t0, rows=ds.num_rows, valid_rows=count_valid(ds["generations"]))


if __name__ == "__main__":
    main()
