"""`notos curate audit|decontaminate|dedup|binarize|compare IN --out OUT` and `notos report DIR`.

Every command writes one output folder: the data (`data.parquet`, `--jsonl` adds `data.jsonl`),
`config.json` (the command and its options), `stats.json` and `report.html`. Decontaminate and
dedup write the kept input rows in the input's own shape, so their output feeds the next
command; what they removed goes to `removals.parquet` / `clusters.parquet` with the reason.
"""

from __future__ import annotations

from pathlib import Path

import typer

from notos.curate import outputs
from notos.errors import NotosError

curate_app = typer.Typer(help="Curate preference data: audit, decontaminate, dedup, binarize, compare.",
                         no_args_is_help=True)

IN = typer.Argument(..., help="UltraFeedback records, a notos run folder, the generic form, or a curate output (Parquet / JSONL / folder).")
OUT = typer.Option(..., "--out", "-o", help="Output folder (created; a previous output of notos curate is replaced).")
FORMAT = typer.Option("auto", "--format", help="Input shape: auto, ultrafeedback, generic or completions.")
JSONL = typer.Option(False, "--jsonl", help="Also write data.jsonl.")


@curate_app.command()
def audit(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    max_gap: float = typer.Option(0.5, "--max-gap", help="Flag a critique score and aspect mean whose rescaled (0-1) gap is at least this."),
    rationale_check: str = typer.Option("lexicon", "--rationale-check", help="lexicon or none: does a rating contradict its own rationale?"),
):
    """Flag completions whose critique score, ratings and rationales disagree (worst first)."""
    from notos.curate.audit import audit as run_audit

    with outputs.writing(out, "audit", input, {"format": format, "max_gap": max_gap, "rationale_check": rationale_check}) as folder:
        completions = outputs.read_input(input, format)
        flags, summary = run_audit(completions, max_gap=max_gap, rationale_check=rationale_check)
        outputs.finish(folder, flags, summary, jsonl)
    outputs.print_summary("audit", summary)


@curate_app.command()
def decontaminate(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    benchmark: list[Path] = typer.Option(..., "--benchmark", "-b", help="Benchmark prompts: JSONL / JSON / Parquet / text, MT-Bench's question.jsonl included (repeatable)."),
    ngram: int = typer.Option(13, "--ngram", min=1, help="Word n-gram length for the overlap test."),
    threshold: float = typer.Option(0.0, "--threshold", min=0.0, max=1.0, help="Share of a benchmark prompt's n-grams found in a prompt above which it is removed (0: any shared n-gram)."),
    drop_source: list[str] = typer.Option(["truthful_qa"], "--drop-source", help="Remove prompts whose source is this benchmark (repeatable)."),
):
    """Remove prompts that match benchmark prompts: by source, exact text, or n-gram overlap."""
    from notos.curate.decontaminate import decontaminate as run

    options = {"format": format, "benchmark": [str(b) for b in benchmark], "ngram": ngram, "threshold": threshold,
               "drop_source": drop_source}
    with outputs.writing(out, "decontaminate", input, options) as folder:
        raw, completions = outputs.read_input_raw(input, format)
        kept, removals = run(completions, benchmark, ngram=ngram, threshold=threshold, sources_to_drop=tuple(drop_source))
        summary = outputs.removal_summary(completions, kept, removals)
        outputs.write_extra(folder, "removals", removals)
        outputs.finish(folder, outputs.keep_rows(raw, kept, str(input)), summary, jsonl)
    outputs.print_summary("decontaminate", summary)


@curate_app.command()
def dedup(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    threshold: float = typer.Option(0.8, "--threshold", min=0.05, max=1.0, help="Estimated Jaccard similarity (of word 5-gram sets) at which two prompts are near duplicates."),
    ngram: int = typer.Option(5, "--ngram", min=1, help="Word n-gram length of the shingles."),
    num_perm: int = typer.Option(128, "--num-perm", min=16, help="MinHash permutations (more: finer similarity estimates, slower)."),
    seed: int = typer.Option(1, "--seed"),
):
    """Remove exact and near-duplicate prompts (MinHash LSH), keeping one per cluster."""
    from notos.curate.dedup import deduplicate

    with outputs.writing(out, "dedup", input, {"format": format, "threshold": threshold, "ngram": ngram,
                                                  "num_perm": num_perm, "seed": seed}) as folder:
        raw, completions = outputs.read_input_raw(input, format)
        kept, clusters = deduplicate(completions, threshold=threshold, num_perm=num_perm, ngram=ngram, seed=seed)
        summary = outputs.cluster_summary(completions, kept, clusters)
        outputs.write_extra(folder, "clusters", clusters)
        outputs.finish(folder, outputs.keep_rows(raw, kept, str(input)), summary, jsonl)
    outputs.print_summary("dedup", summary)


@curate_app.command()
def binarize(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    strategy: str = typer.Option("mean", "--strategy", "-s", help="overall (critique score, Zephyr), mean (mean of aspect ratings, Notus), best-worst, all-pairs."),
    min_margin: float = typer.Option(0.0, "--min-margin", min=0.0, help="Drop pairs whose score gap is below this."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random choices (rejected response, ties)."),
    save_datasets: bool = typer.Option(False, "--save-datasets", help="Also save a `datasets` folder (load_from_disk) under OUT/dataset."),
):
    """Turn rated completions into (prompt, chosen, rejected) pairs in TRL's preference format."""
    from notos.curate.binarize import binarize as run

    options = {"format": format, "strategy": strategy, "min_margin": min_margin, "seed": seed}
    with outputs.writing(out, "binarize", input, options) as folder:
        completions = outputs.read_input(input, format)
        pairs, stats = outputs.call_binarize(run, completions, strategy, min_margin, seed)
        if save_datasets:
            import datasets

            datasets.Dataset(pairs).save_to_disk(str(folder / "dataset"))
        outputs.finish(folder, pairs, stats, jsonl)
    outputs.print_summary("binarize", stats)


@curate_app.command()
def compare(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    a: str = typer.Option("overall", "--a", help="First strategy (default: the critique score, as Zephyr's data)."),
    b: str = typer.Option("mean", "--b", help="Second strategy (default: the mean of aspect ratings, as Notus)."),
    seed: int = typer.Option(0, "--seed"),
):
    """How often two binarization strategies pick a different chosen / rejected response."""
    from notos.curate.binarize import binarize as run
    from notos.curate.compare import compare as run_compare

    if a == b:
        raise NotosError(f"--a and --b are both '{a}': compare two different strategies")
    with outputs.writing(out, "compare", input, {"format": format, "a": a, "b": b, "seed": seed}) as folder:
        completions = outputs.read_input(input, format)
        pairs_a, _ = outputs.call_binarize(run, completions, a, 0.0, seed)
        pairs_b, _ = outputs.call_binarize(run, completions, b, 0.0, seed)
        comparison = run_compare(pairs_a, pairs_b)
        comparison["strategies"] = {"a": a, "b": b}
        outputs.write_extra(folder, f"pairs_{a}", pairs_a)
        outputs.write_extra(folder, f"pairs_{b}", pairs_b)
        outputs.finish(folder, outputs.examples_table(comparison), comparison, jsonl)
    outputs.print_summary("compare", comparison)


def report(run_dir: Path = typer.Argument(..., help="An output folder of notos curate.")):
    """(Re)write report.html for a curate output folder."""
    path = outputs.build_report(run_dir)
    typer.echo(f"wrote {path}")
