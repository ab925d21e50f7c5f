"""`notos curate all|audit|decontaminate|dedup|binarize|compare IN --out OUT` and `notos report DIR`.

Every command writes one output folder: the data (`data.parquet`, `--jsonl` adds `data.jsonl`),
`config.json` (the command and its options), `stats.json` and `report.html`. All of them run on
one engine (`notos.curate.onepass`): the input is read once, only the columns a command needs,
the completions in batches; report.html is drawn from the counts the run kept.

Decontaminate and dedup write the kept input rows in the input's own shape, each with its
`prompt_id`, so their output feeds the next command and every later output still names the
original prompt; what they removed goes to `removals.parquet` / `clusters.parquet` with the
reason. `curate all` runs decontaminate, dedup, audit, two binarizations and compare in one
pass and writes: data.parquet (pairs by --strategy), pairs_<other>.parquet, flags.parquet,
removals.parquet, clusters.parquet.
"""

from __future__ import annotations

from pathlib import Path

import typer

from notos.curate import outputs
from notos.errors import NotosError

curate_app = typer.Typer(help="Curate preference data: all steps in one pass, or audit, decontaminate, dedup, "
                              "binarize, compare.", no_args_is_help=True)

IN = typer.Argument(..., help="UltraFeedback records, a notos run folder, the generic form, or a curate output (Parquet / JSONL / folder).")
OUT = typer.Option(..., "--out", "-o", help="Output folder (created; a previous output of notos curate is replaced).")
FORMAT = typer.Option("auto", "--format", help="Input shape: auto, ultrafeedback, generic or completions.")
JSONL = typer.Option(False, "--jsonl", help="Also write data.jsonl.")
MAX_GAP = typer.Option(0.5, "--max-gap", help="Flag a critique score and aspect mean whose rescaled (0-1) gap is at least this.")
CRITIQUE_RULE = typer.Option("gap", "--critique-rule", help="When a critique score contradicts the ratings: gap (rescaled gap >= --max-gap, or the classic case), classic (only critique >= 9 over an aspect mean <= 2), none.")
RATIONALE_CHECK = typer.Option("lexicon", "--rationale-check", help="lexicon or none: does a rating contradict its own rationale?")
BENCHMARK = typer.Option(..., "--benchmark", "-b", help="Benchmark prompts: JSONL / JSON / Parquet / text, MT-Bench's question.jsonl included (repeatable).")
NGRAM = typer.Option(13, "--ngram", min=1, help="Word n-gram length for the benchmark overlap test.")
DECONTAM_THRESHOLD = typer.Option(0.0, "--threshold", min=0.0, max=1.0, help="Share of a benchmark prompt's n-grams found in a prompt above which it is removed (0: any shared n-gram).")
DROP_SOURCE = typer.Option(["truthful_qa"], "--drop-source", help="Remove every prompt whose source is this benchmark, whatever its text (repeatable; 'none' keeps them all). The report says how many went this way.")
DEDUP_THRESHOLD_HELP = ("Estimated Jaccard similarity of two prompts' sets of words and word pairs at which they are near "
                        "duplicates. At 0.6 a 20-word prompt may differ in about 3 words, a 100-word prompt in about 15; "
                        "unrelated prompts rarely reach 0.3. Prompts under --min-words words only match exactly.")
STRATEGY_HELP = "overall (critique score, Zephyr), mean (mean of aspect ratings, Notus), best-worst, all-pairs."
EDITS = typer.Option(None, "--edits", help="A review file of edits (notos review): rating changes and discards are applied, forced chosen / rejected responses win over the strategy.")


def _audit_options(max_gap, critique_rule, rationale_check) -> dict:
    from notos.curate.audit import CRITIQUE_RULES

    if critique_rule not in CRITIQUE_RULES:
        raise NotosError(f"--critique-rule {critique_rule}: choose from {', '.join(CRITIQUE_RULES)}")
    return {"max_gap": max_gap, "critique_rule": critique_rule, "rationale_check": rationale_check}


def _sources(drop_source: list[str]) -> tuple[str, ...]:
    return () if [s.strip().lower() for s in drop_source] in (["none"], [""]) else tuple(drop_source)


def _run(input, format, plan, folder):
    from notos.curate.onepass import run_plan

    return run_plan(input, format, plan, folder)


def _with_report(stats: dict, result) -> dict:
    if result.edits is not None:
        stats["edits_applied"] = result.edits
    stats["report"] = result.tally.to_json() if result.tally else {}
    return stats


@curate_app.command(name="all")
def all_steps(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    benchmark: list[Path] = BENCHMARK, ngram: int = NGRAM, decontam_threshold: float = typer.Option(
        0.0, "--decontam-threshold", min=0.0, max=1.0, help="Decontamination: see `curate decontaminate --threshold`."),
    drop_source: list[str] = DROP_SOURCE,
    dedup: bool = typer.Option(True, "--dedup/--no-dedup", help="Remove exact and near-duplicate prompts."),
    dedup_threshold: float = typer.Option(0.6, "--dedup-threshold", min=0.05, max=1.0, help=DEDUP_THRESHOLD_HELP),
    max_gap: float = MAX_GAP, critique_rule: str = CRITIQUE_RULE, rationale_check: str = RATIONALE_CHECK,
    strategy: str = typer.Option("mean", "--strategy", "-s", help="The pairs in data.parquet: " + STRATEGY_HELP),
    compare_with: str = typer.Option("overall", "--compare-with", help="A second strategy, written to pairs_<name>.parquet and compared with --strategy."),
    min_margin: float = typer.Option(0.0, "--min-margin", min=0.0, help="Drop pairs whose score gap is below this (data.parquet only)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random choices (rejected response, ties)."),
    edits: Path = EDITS,
):
    """Decontaminate, dedup, audit, binarize twice and compare in one pass over the input."""
    from notos.curate.onepass import Plan, Strategy

    if strategy == compare_with:
        raise NotosError(f"--strategy and --compare-with are both '{strategy}': compare two different strategies")
    audit_options = _audit_options(max_gap, critique_rule, rationale_check)
    sources = _sources(drop_source)
    options = {"format": format, "benchmark": [str(b) for b in benchmark], "ngram": ngram,
               "decontam_threshold": decontam_threshold, "drop_source": list(sources), "dedup": dedup,
               "dedup_threshold": dedup_threshold, **audit_options, "strategy": strategy, "compare_with": compare_with,
               "min_margin": min_margin, "seed": seed, "edits": str(edits) if edits else None}
    plan = Plan(decontaminate={"benchmark": list(benchmark), "ngram": ngram, "threshold": decontam_threshold,
                               "sources_to_drop": sources},
                dedup={"threshold": dedup_threshold} if dedup else None, audit=audit_options,
                strategies=[Strategy(strategy, "data", min_margin, seed),
                            Strategy(compare_with, f"pairs_{compare_with.replace('-', '_')}", 0.0, seed)],
                compare=(compare_with, strategy), edits=edits)
    with outputs.writing(out, "all", input, options) as folder:
        result = _run(input, format, plan, folder)
        stats = {"prompts_in": result.prompts, "prompts_kept": len(result.kept_ids),
                 "completions_kept": result.completions, "pairs": result.binarize.get(strategy, {}).get("pairs", 0)}
        before = _Counted(result.prompts)
        after_decontam = _Counted(result.prompts - result.removals.num_rows)
        stats["removals"] = outputs.removal_summary(before, after_decontam, result.removals, sources)
        outputs.write_extra(folder, "removals", result.removals)
        if result.clusters is not None:
            stats["clusters"] = outputs.cluster_summary(after_decontam, _Counted(len(result.kept_ids)), result.clusters)
            outputs.write_extra(folder, "clusters", result.clusters)
        stats["audit"] = result.audit
        stats["binarize"] = result.binarize
        stats["compare"] = {**result.compare, "strategies": {"a": compare_with, "b": strategy}}
        outputs.finish(folder, None, _with_report(stats, result), jsonl)
    outputs.print_summary("all", {k: v for k, v in stats.items() if k != "report"})


class _Counted:
    """What the summaries read of a table: its number of prompts."""

    def __init__(self, n: int):
        self.num_prompts = n


@curate_app.command()
def audit(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    max_gap: float = MAX_GAP, critique_rule: str = CRITIQUE_RULE, rationale_check: str = RATIONALE_CHECK,
):
    """Flag completions whose critique score, ratings and rationales disagree (worst first)."""
    from notos.curate.onepass import Plan

    options = _audit_options(max_gap, critique_rule, rationale_check)
    with outputs.writing(out, "audit", input, {"format": format, **options}) as folder:
        result = _run(input, format, Plan(audit=options, audit_file="data"), folder)
        outputs.finish(folder, None, _with_report(result.audit, result), jsonl)
    outputs.print_summary("audit", result.audit)


@curate_app.command()
def decontaminate(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    benchmark: list[Path] = BENCHMARK, ngram: int = NGRAM, threshold: float = DECONTAM_THRESHOLD,
    drop_source: list[str] = DROP_SOURCE,
):
    """Remove prompts that match benchmark prompts: by source, exact text, or n-gram overlap."""
    from notos.curate.onepass import Plan

    sources = _sources(drop_source)
    options = {"format": format, "benchmark": [str(b) for b in benchmark], "ngram": ngram, "threshold": threshold,
               "drop_source": list(sources)}
    plan = Plan(decontaminate={"benchmark": list(benchmark), "ngram": ngram, "threshold": threshold,
                               "sources_to_drop": sources}, keep_file="data")
    with outputs.writing(out, "decontaminate", input, options) as folder:
        result = _run(input, format, plan, folder)
        summary = outputs.removal_summary(_Counted(result.prompts), _Counted(len(result.kept_ids)), result.removals, sources)
        outputs.write_extra(folder, "removals", result.removals)
        outputs.finish(folder, None, summary, jsonl)
    outputs.print_summary("decontaminate", summary)
    typer.echo(summary["source_rule"])


@curate_app.command()
def dedup(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    threshold: float = typer.Option(0.6, "--threshold", min=0.05, max=1.0, help=DEDUP_THRESHOLD_HELP),
    ngram: int = typer.Option(2, "--ngram", min=1, help="Shingles are runs of 1 to this many words."),
    min_words: int = typer.Option(10, "--min-words", min=1, help="Prompts shorter than this only match exactly."),
    num_perm: int = typer.Option(128, "--num-perm", min=16, help="MinHash permutations (more: finer similarity estimates, slower)."),
    seed: int = typer.Option(1, "--seed"),
):
    """Remove exact and near-duplicate prompts (MinHash LSH), keeping the first of each cluster."""
    from notos.curate.onepass import Plan

    options = {"threshold": threshold, "ngram": ngram, "min_words": min_words, "num_perm": num_perm, "seed": seed}
    with outputs.writing(out, "dedup", input, {"format": format, **options}) as folder:
        result = _run(input, format, Plan(dedup=options, keep_file="data"), folder)
        summary = outputs.cluster_summary(_Counted(result.prompts), _Counted(len(result.kept_ids)), result.clusters)
        outputs.write_extra(folder, "clusters", result.clusters)
        outputs.finish(folder, None, summary, jsonl)
    outputs.print_summary("dedup", summary)


@curate_app.command()
def binarize(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    strategy: str = typer.Option("mean", "--strategy", "-s", help=STRATEGY_HELP),
    min_margin: float = typer.Option(0.0, "--min-margin", min=0.0, help="Drop pairs whose score gap is below this."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random choices (rejected response, ties)."),
    save_datasets: bool = typer.Option(False, "--save-datasets", help="Also save a `datasets` folder (load_from_disk) under OUT/dataset."),
    edits: Path = EDITS,
):
    """Turn rated completions into (prompt, chosen, rejected) pairs in TRL's preference format."""
    from notos.curate.binarize import STRATEGIES
    from notos.curate.onepass import Plan, Strategy

    if strategy not in STRATEGIES:
        raise NotosError(f"--strategy {strategy}: choose from {', '.join(STRATEGIES)}")
    options = {"format": format, "strategy": strategy, "min_margin": min_margin, "seed": seed,
               "edits": str(edits) if edits else None}
    with outputs.writing(out, "binarize", input, options) as folder:
        result = _run(input, format, Plan(strategies=[Strategy(strategy, "data", min_margin, seed)], edits=edits), folder)
        stats = _with_report(dict(result.binarize.get(strategy, {})), result)
        if save_datasets:
            import datasets
            import pyarrow.parquet as pq

            datasets.Dataset(pq.read_table(folder / "data.parquet")).save_to_disk(str(folder / "dataset"))
        outputs.finish(folder, None, stats, jsonl)
    outputs.print_summary("binarize", stats)


@curate_app.command()
def compare(
    input: Path = IN, out: Path = OUT, format: str = FORMAT, jsonl: bool = JSONL,
    a: str = typer.Option("overall", "--a", help="First strategy (default: the critique score, as Zephyr's data)."),
    b: str = typer.Option("mean", "--b", help="Second strategy (default: the mean of aspect ratings, as Notus)."),
    seed: int = typer.Option(0, "--seed"),
    edits: Path = typer.Option(None, "--edits", help="A review file of edits (notos review): compare --b's pairs before and after the person's edits instead of two strategies."),
):
    """How often two binarization strategies pick a different chosen / rejected response (or one
    strategy before and after a person's edits, with --edits)."""
    from notos.curate.binarize import STRATEGIES
    from notos.curate.onepass import Plan, Strategy

    if edits is not None:
        return _compare_edits(input, out, format, jsonl, b, seed, edits)
    if a == b:
        raise NotosError(f"--a and --b are both '{a}': compare two different strategies")
    for name, value in (("--a", a), ("--b", b)):
        if value not in STRATEGIES:
            raise NotosError(f"{name} {value}: choose from {', '.join(STRATEGIES)}")
    plan = Plan(strategies=[Strategy(a, f"pairs_{a}", 0.0, seed), Strategy(b, f"pairs_{b}", 0.0, seed)], compare=(a, b))
    with outputs.writing(out, "compare", input, {"format": format, "a": a, "b": b, "seed": seed}) as folder:
        result = _run(input, format, plan, folder)
        comparison = {**result.compare, "strategies": {"a": a, "b": b}}
        outputs.finish(folder, outputs.examples_table(comparison), _with_report(comparison, result), jsonl)
    outputs.print_summary("compare", comparison)


def _compare_edits(input: Path, out: Path, format: str, jsonl: bool, strategy: str, seed: int, edits: Path) -> None:
    """One strategy's pairs without, then with, a review's edits: what the person changed."""
    import pyarrow.parquet as pq

    from notos.curate.binarize import STRATEGIES
    from notos.curate.compare import compare as compare_pairs
    from notos.curate.onepass import Plan, Strategy

    if strategy not in STRATEGIES:
        raise NotosError(f"--b {strategy}: choose from {', '.join(STRATEGIES)}")
    if not Path(edits).exists():
        raise NotosError(f"--edits {edits}: no such file or folder")
    config = {"format": format, "a": f"{strategy} before edits", "b": f"{strategy} after edits", "seed": seed,
              "edits": str(edits)}
    with outputs.writing(out, "compare", input, config) as folder:
        _run(input, format, Plan(strategies=[Strategy(strategy, "pairs_before", 0.0, seed)]), folder)
        result = _run(input, format, Plan(strategies=[Strategy(strategy, "pairs_after", 0.0, seed)], edits=edits), folder)
        comparison = compare_pairs(pq.read_table(folder / "pairs_before.parquet"), pq.read_table(folder / "pairs_after.parquet"))
        comparison["strategies"] = {"a": config["a"], "b": config["b"]}
        outputs.finish(folder, outputs.examples_table(comparison), _with_report(comparison, result), jsonl)
    outputs.print_summary("compare", comparison)


RUN_DIR = typer.Argument(..., help="An output folder of notos curate.")


def report(run_dir: Path = RUN_DIR):
    """(Re)write report.html for a curate output folder, from its stats.json (the input is not read)."""
    path = outputs.build_report(run_dir)
    typer.echo(f"wrote {path}")
