"""The whole loop in one command: `notos quickstart`.

    generate    the `quickstart` recipe: the bundled prompts answered by a pool of three system
                prompts on the embedded model, each answer rated 1-5 from its probabilities
    audit       `notos curate audit`; completions flagged as broken labels are dropped
    decontaminate  prompts that overlap an MT-Bench question go (one is planted in the prompts)
    binarize    `notos curate binarize`, Notus's rule (the mean rating)
    dpo         a few LoRA DPO steps from the start model (`recipes/train/quickstart-dpo.yaml`)
    eval        the DPO model against the start model on MT-Bench first turns, judged in both orders
    report      OUT/report.html, linking every stage's own report

Each stage writes one subfolder of OUT and records itself in OUT/stages.json with a key made of
its options and the keys of the stages before it: a rerun skips a finished stage whose key is
unchanged, resumes an interrupted one (training from its last checkpoint) and redoes a changed
one with everything after it. The helpers here serve `notos experiment binarization` too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from notos.errors import NotosError
from notos.shipped import RECIPE_DATA

MT_BENCH = RECIPE_DATA / "mt_bench_questions.jsonl"
STATE = "stages.json"
GENERATORS = ("answer_helpful", "answer_honest", "answer_terse")
# Completions flagged with these are labels no rule should learn from; a critique that disagrees
# with its ratings is NOT dropped: which of the two to believe is what binarization decides.
BROKEN_LABELS = ("missing_rating", "duplicate_response")
SMALL_JUDGE_CAVEAT = (
    "Caveat: the judge is the same 135M model the loop started from; its verdicts show the mechanics, "
    "not quality. For a real measure: --judge openai:gpt-4o (or http://HOST/v1).")


# --- stage bookkeeping ------------------------------------------------------------------------------

def open_out(out: Path, tool: str) -> dict:
    """OUT must be new, empty, or an earlier output of this command; returns its stage state."""
    out = Path(out)
    state_path = out / STATE
    if out.exists() and not out.is_dir():
        raise NotosError(f"--out {out}: is a file, not a folder; choose a folder")
    if out.is_dir() and any(out.iterdir()):
        state = _read_json(state_path)
        if state.get("tool") != tool:
            raise NotosError(f"--out {out}: exists and is not an output of {tool}; choose another folder")
        return state
    out.mkdir(parents=True, exist_ok=True)
    state = {"tool": tool, "stages": {}}
    _write_json(state_path, state)
    return state


def run_stage(out: Path, state: dict, name: str, inputs: dict, work, describe, folder: Path | None = None) -> dict:
    """Run one stage unless it finished before with the same inputs; print one line either way.

    `inputs` (JSON) and the keys of earlier stages make the stage's key; `work()` returns its
    summary (JSON), `describe(summary)` its line. A changed key clears `folder` first, so a
    trainer never resumes a checkpoint made from other data."""
    key = _key({"inputs": inputs, "before": [s["key"] for s in state["stages"].values() if s.get("order", 0) < _order(state, name)]})
    record = state["stages"].get(name, {})
    if record.get("key") == key and record.get("done"):
        print(f"{name:<14} {describe(record['summary'])}  (done earlier)", flush=True)
        return record["summary"]
    if record.get("key") != key and folder is not None and folder.exists():
        _clear(out, folder)
    state["stages"][name] = {"key": key, "done": False, "order": _order(state, name)}
    _write_json(out / STATE, state)
    began = time.monotonic()
    summary = work()
    seconds = round(time.monotonic() - began, 1)
    state["stages"][name].update(done=True, summary=summary, seconds=seconds)
    _write_json(out / STATE, state)
    print(f"{name:<14} {describe(summary)}  [{seconds:.0f} s]", flush=True)
    return summary


def trained_before(out: Path, names: list[str]) -> bool:
    """Whether these (training) stages all finished in an earlier run: a rerun then skips checking
    the recipe up front, which imports TRL (seconds)."""
    stages = _read_json(Path(out) / STATE).get("stages") or {}
    return all((stages.get(name) or {}).get("done") for name in names)


def _order(state: dict, name: str) -> int:
    """A stage's position: kept from the first run, new stages after the known ones."""
    known = state["stages"].get(name, {}).get("order")
    return known if known is not None else len(state["stages"])


def file_stamp(path: Path | None) -> list | None:
    """Size and modification time of a file, or of every file under a folder: enough to notice
    that an input changed under the same name, without reading it."""
    if path is None or not Path(path).exists():
        return None
    files = [Path(path)] if Path(path).is_file() else sorted(p for p in Path(path).rglob("*") if p.is_file())
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _key(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _clear(out: Path, folder: Path) -> None:
    """Only ever a stage folder inside OUT (this command wrote it)."""
    if Path(out).resolve() not in Path(folder).resolve().parents:
        raise NotosError(f"{folder}: not inside {out}; not removing it")
    shutil.rmtree(folder)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_json(path: Path, value) -> None:
    from notos.data.atomic import write_json

    write_json(path, value)


# --- data glue --------------------------------------------------------------------------------------

def rated_to_generic(run_dir: Path, target: Path) -> int:
    """The quickstart leaf (instruction, generations, ratings_expected ...) in curate's generic
    form (prompt, responses, models, scores_<criterion>); returns the rows written. The score is
    the expected rating (the judge's probabilities of "1".."5" weighted), which ties far less
    often than the rounded 1-5 rating, so more prompts give a pair."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from notos.data.records import read_raw

    raw = read_raw(run_dir)
    if "_error" in raw.column_names:
        raw = raw.filter(pc.is_null(raw.column("_error")))
    table = pa.table({
        "row_id": raw.column("row_id"), "prompt": raw.column("instruction"), "responses": raw.column("generations"),
        "models": raw.column("generation_models"), "source": pa.array(["quickstart"] * raw.num_rows, pa.string()),
        "scores_expected_rating": raw.column("ratings_expected"),
    })
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target)
    return table.num_rows


def audit_and_fix(input_path: Path, folder: Path, drop_flags=BROKEN_LABELS, fmt: str = "auto") -> dict:
    """`notos curate audit` into `folder`, plus `fixed.parquet`: the completions without the ones
    flagged with `drop_flags` (a completions table, which every curate command reads)."""
    from notos.curate import outputs
    from notos.curate.audit import audit

    options = {"format": fmt, "max_gap": 0.5, "rationale_check": "lexicon", "drop_flags": list(drop_flags)}
    with outputs.writing(folder, "audit", input_path, options) as work:
        completions = outputs.read_input(input_path, fmt)
        flags, summary = audit(completions, max_gap=0.5, rationale_check="lexicon")
        fixed, dropped = _drop_flagged(completions.table, flags, drop_flags)
        summary = {**summary, "completions": completions.table.num_rows, "dropped_as_broken": dropped,
                   "completions_kept": fixed.num_rows}
        outputs.write_extra(work, "fixed", fixed)
        outputs.finish(work, flags, summary, False)
    return summary


def _drop_flagged(table, flags, names) -> tuple:
    """(the completions table without those flagged with one of `names`, how many went)."""
    import pyarrow as pa

    columns = [flags.column(c).to_pylist() for c in ("prompt_id", "completion_index", "flags")]
    gone = {(p, i) for p, i, found in zip(*columns) if set(found or ()) & set(names)}
    keys = zip(table.column("prompt_id").to_pylist(), table.column("completion_index").to_pylist())
    return table.filter(pa.array([k not in gone for k in keys], pa.bool_())), len(gone)


def decontaminate_against(input_path: Path, folder: Path, benchmarks: list[Path]) -> dict:
    """`notos curate decontaminate` (13-gram overlap, any shared n-gram) into `folder`; the
    summary names what each removed prompt matched."""
    from notos.curate import outputs
    from notos.curate.decontaminate import decontaminate

    options = {"format": "auto", "benchmark": [str(b) for b in benchmarks], "ngram": 13, "threshold": 0.0,
               "drop_source": ["truthful_qa"]}
    with outputs.writing(folder, "decontaminate", input_path, options) as work:
        raw, completions = outputs.read_input_raw(input_path, "auto")
        kept, removals = decontaminate(completions, benchmarks, ngram=13, threshold=0.0)
        summary = outputs.removal_summary(completions, kept, removals)
        summary["removed"] = [{k: r[k] for k in ("prompt_id", "prompt", "reason", "benchmark_id", "benchmark_text")}
                              for r in removals.to_pylist()]
        outputs.write_extra(work, "removals", removals)
        outputs.finish(work, outputs.keep_rows(raw, kept, str(input_path)), summary, False)
    return summary


def binarize_into(input_path: Path, folder: Path, strategy: str, seed: int = 0) -> dict:
    """`notos curate binarize` into `folder` (TRL's prompt / chosen / rejected + provenance)."""
    from notos.curate import outputs
    from notos.curate.binarize import binarize

    with outputs.writing(folder, "binarize", input_path, {"format": "auto", "strategy": strategy, "min_margin": 0.0,
                                                          "seed": seed}) as work:
        completions = outputs.read_input(input_path, "auto")
        pairs, stats = outputs.call_binarize(binarize, completions, strategy, 0.0, seed)
        outputs.finish(work, pairs, stats, False)
    return stats


# --- training ------------------------------------------------------------------------------------

def train_dpo(recipe_spec: str, overrides: list[str], data: Path, folder: Path, own_pairs: bool = False) -> dict:
    """One DPO run (`notos train dpo`, which shows its own progress and ETA), resumed from its
    last checkpoint when one is there. `own_pairs`: the pairs it trains on are its evaluation
    set too (small data only): with the start model as the reference the reward margin is 0
    before training, so the margin after it says what DPO did to its own pairs."""
    from notos.train.cli import check_inputs
    from notos.train.run import run_recipe

    recipe = dpo_recipe(recipe_spec, overrides, data if own_pairs else None, data)
    check_inputs(recipe, str(data), folder)
    drop_partial_checkpoints(folder)
    (summary,) = run_recipe(recipe, folder)
    logged = read_metrics(folder)
    return {"steps": summary.get("steps"), "final_loss": summary.get("final_loss"),
            "margins": [m["rewards/margins"] for m in logged if "rewards/margins" in m],
            "margin_after": summary.get("eval_rewards/margins"), "accuracy_after": summary.get("eval_rewards/accuracies"),
            "train_seconds": summary.get("train_seconds"), "resumed_from": summary.get("resumed_from"), "recipe": recipe_spec,
            "model": recipe.stages[0].recipe.model}


def drop_partial_checkpoints(folder: Path) -> list[str]:
    """Remove checkpoints a kill cut short. transformers writes trainer_state.json last, into the
    checkpoint's final folder: a folder without it would make the resume fail on a missing file."""
    gone = []
    for checkpoint in sorted((Path(folder) / "checkpoints").glob("checkpoint-*")):
        if checkpoint.is_dir() and not (checkpoint / "trainer_state.json").is_file():
            shutil.rmtree(checkpoint)
            gone.append(checkpoint.name)
    return gone


def dpo_recipe(recipe_spec: str, overrides: list[str], eval_on: Path | None = None, data: Path | None = None):
    """The DPO recipe as the loop runs it (a step per log line, for the curves; `eval_on`: an
    evaluation set in place of a held-out share); called before anything runs too, so a typo in
    a `--set train.KEY=VALUE` is a one-line error at once, not after minutes of generation."""
    from notos.train.recipes import load_recipe

    eval_keys = [f"eval_data={Path(eval_on).resolve()}", "eval_fraction=0.0"] if eval_on is not None else []
    recipe = load_recipe(recipe_spec, ["logging_steps=1", *eval_keys, *overrides], str(data) if data is not None else None)
    if recipe.staged or recipe.stages[0].recipe.kind != "dpo":
        raise NotosError(f"recipe '{recipe_spec}': not a DPO recipe (it needs kind: dpo)")
    return recipe


def read_metrics(folder: Path) -> list[dict]:
    path = Path(folder) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def trained_model_spec(folder: Path) -> str:
    """The LLM spec of a training output's model (its adapter merged into the base once)."""
    from notos.train.models import resolve_model

    return f"transformers:{resolve_model(str(folder))}"


def start_model_spec(model: str) -> str | dict:
    """The LLM spec of the model a recipe starts from. A GGUF model (the embedded one) decodes in
    float32 like the trained model it is compared with; with its 4-bit decoding the comparison
    would measure the quantization as well as the training."""
    if model == "embedded" or str(model).endswith(".gguf"):
        return {"backend": "transformers", "model": model, "dtype": "float32"}
    return f"transformers:{model}"


# --- answering and judging ------------------------------------------------------------------------------

def benchmark_instructions(path: Path, limit: int, target: Path) -> Path:
    """The first turns of `limit` MT-Bench questions, one category after another (writing,
    roleplay, reasoning, math, ...), so a few prompts still span the benchmark."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    seen: dict[str, int] = {}
    ranked = []
    for position, row in enumerate(rows):
        category = str(row.get("category"))
        rank = seen[category] = seen.get(category, -1) + 1
        ranked.append((rank, list(seen).index(category), position, row))
    chosen = [{"instruction": r["turns"][0], "question_id": r.get("question_id"), "category": r.get("category")}
              for *_, r in sorted(ranked, key=lambda t: t[:3])[:limit]]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(r) + "\n" for r in chosen), encoding="utf-8")
    return target


def answer(spec: str | dict, name: str, instructions: Path, folder: Path, max_new_tokens: int, progress: bool) -> Path:
    """A model's answers to the instructions (a resumable run in `folder`), written as an
    AlpacaEval outputs file `folder/outputs.json` (instruction, output, generator)."""
    from notos.data.alpaca_eval import read_instructions
    from notos.pipeline import Pipeline, from_rows, load_run, run
    from notos.tasks import text_generation

    texts = read_instructions(instructions)
    rows = [{"position": i, "instruction": t} for i, t in enumerate(texts)]
    last = from_rows(rows, id_column="position", name="instructions") >> text_generation(
        spec, output_column="output", max_new_tokens=max_new_tokens, temperature=0.0, name="answers")
    run(Pipeline(last, name=f"answers-{name}", batch_size=16), folder / "run", progress=progress, retry_failed=True)
    done = sorted(load_run(folder / "run")["answers"].to_list(), key=lambda r: r["position"])
    outputs = [{"instruction": r["instruction"], "output": r.get("output") or "", "generator": name} for r in done]
    _write_json(folder / "outputs.json", outputs)
    return folder / "outputs.json"


def judge_pair(model_outputs: Path, baseline_outputs: Path, judge: str, folder: Path, progress: bool) -> dict:
    """The win rate of one outputs file over another, judged in both orders (ties count half),
    with its standard error; `notos eval winrate`'s folder and figures."""
    from notos.evaluate.judged_winrate import run_judged

    summary = run_judged(folder, baseline=str(baseline_outputs), judge=judge, model_outputs=model_outputs,
                         both_orders=True, progress=progress)
    keys = ("model", "baseline", "judge", "win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total",
            "n_missing", "n_inconsistent", "n_verdicts_unreadable")
    return {k: summary.get(k) for k in keys}


def winrate_line(s: dict) -> str:
    if s.get("win_rate") is None:
        return f"{s['model']} vs {s['baseline']}: no verdict could be read"
    return (f"{s['model']} vs {s['baseline']}: win rate {s['win_rate']:.1f}% ± {s['standard_error'] or 0:.1f} "
            f"({s['n_wins']} wins, {s['n_wins_base']} losses, {s['n_draws']} ties of {s['n_total']}; "
            f"judge {s['judge']}, both orders)")


# --- the quickstart loop -------------------------------------------------------------------------------

@dataclass
class LoopOptions:
    out: Path = Path("runs/quickstart")
    prompts: int | None = 12  # the first N prompts (the planted contaminated one is the 6th bundled); None: all
    input: Path | None = None  # prompts of one's own instead (JSONL / Parquet / CSV with `instruction`)
    max_new_tokens: int = 32
    steps: int = 6
    eval_prompts: int = 6
    judge: str = "embedded"
    sets: list[str] = field(default_factory=list)  # `--set step.option=value` for the quickstart recipe
    train_sets: list[str] = field(default_factory=list)  # recipe keys for quickstart-dpo
    progress: bool = True


def run_quickstart(o: LoopOptions) -> dict:
    """The loop, stage by stage (see the module doc); returns {stage: summary}."""
    from notos.pipeline import run as run_pipeline
    from notos.recipes import load_pipeline

    out = Path(o.out)
    if o.input is not None and not Path(o.input).exists():
        raise NotosError(f"--input {o.input}: no such file")
    tokens = [f"{g}.max_new_tokens={o.max_new_tokens}" for g in GENERATORS]
    pipe, _ = load_pipeline("quickstart", [*tokens, *o.sets], str(o.input) if o.input else None)
    pipe.validate()
    train_sets = [f"max_steps={o.steps}", "merge=true", *o.train_sets]
    if not trained_before(out, ["dpo"]):
        dpo_recipe("quickstart-dpo", train_sets)
    state = open_out(out, "notos quickstart")
    done: dict[str, dict] = {}
    began = time.monotonic()

    def generate():
        result = run_pipeline(pipe, out / "generate", limit=o.prompts, progress=o.progress)
        rows = rated_to_generic(result.out_dir, out / "rated" / "data.parquet")
        return {"prompts_in": _source_rows(o.input or RECIPE_DATA / "quickstart_prompts.jsonl", o.prompts), "rows": rows,
                "answers": 3 * rows}

    stages = [
        ("generate", {"prompts": o.prompts, "input": file_stamp(o.input), "sets": tokens + o.sets}, generate, None),
        ("audit", {"drop": BROKEN_LABELS}, lambda: audit_and_fix(out / "rated" / "data.parquet", out / "audit"), out / "audit"),
        ("decontaminate", {"benchmark": MT_BENCH.name},
         lambda: decontaminate_against(out / "audit" / "fixed.parquet", out / "decontaminate", [MT_BENCH]), out / "decontaminate"),
        ("binarize", {"strategy": "mean"}, lambda: binarize_into(out / "decontaminate", out / "binarize", "mean"), out / "binarize"),
        ("dpo", {"sets": train_sets}, lambda: train_dpo("quickstart-dpo", train_sets, out / "binarize", out / "dpo", own_pairs=True), out / "dpo"),
        ("eval", {"n": o.eval_prompts, "tokens": o.max_new_tokens, "judge": o.judge}, lambda: before_after(out, o, done["dpo"]["model"]), out / "eval"),
    ]
    for name, inputs, work, folder in stages:
        done[name] = run_stage(out, state, name, inputs, work, DESCRIBE[name], folder=folder)
    if o.judge == "embedded":
        print(SMALL_JUDGE_CAVEAT, flush=True)
    report = write_loop_report(out, state, o.judge)
    print(f"{'report':<14} {report}  (whole run {time.monotonic() - began:.0f} s)", flush=True)
    return done


def _source_rows(path: Path, limit: int | None) -> int:
    from notos.data.io import read_rows

    n = sum(1 for _ in read_rows(str(path)))
    return min(n, limit) if limit else n


def before_after(out: Path, o: LoopOptions, start_model: str) -> dict:
    """The DPO model against the start model on held-out MT-Bench first turns, judged both orders."""
    instructions = benchmark_instructions(MT_BENCH, o.eval_prompts, out / "eval" / "instructions.jsonl")
    name = "start (SmolLM2-135M-Instruct)" if start_model == "embedded" else f"start ({start_model})"
    start = answer(start_model_spec(start_model), name, instructions, out / "eval" / "start", o.max_new_tokens, o.progress)
    tuned = answer(trained_model_spec(out / "dpo"), "after DPO", instructions, out / "eval" / "dpo", o.max_new_tokens, o.progress)
    return judge_pair(tuned, start, o.judge, out / "eval" / "winrate", o.progress)


def _counts_text(counts: dict | None, empty: str) -> str:
    return ", ".join(f"{k}: {v}" for k, v in (counts or {}).items() if v) or empty


def _removed_text(s: dict) -> str:
    removed = s.get("removed") or []
    what = "; ".join(f"{r['prompt_id']} \"{_short(r['prompt'])}\" matches {r['benchmark_id']} ({r['reason']})" for r in removed[:5])
    return f"{s['prompts_removed']} of {s['prompts_in']} prompts removed" + (f": {what}" if what else "")


def _short(text: str, width: int = 48) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _margin_text(s: dict) -> str:
    after, accuracy = s.get("margin_after"), s.get("accuracy_after")
    trend = (f"reward margin (chosen - rejected) on its own pairs 0 -> {after:+.3f}, chosen ahead on {100 * accuracy:.0f}% of them"
             if after is not None else "no evaluation logged")
    return f"{s['steps']} LoRA DPO steps from {s['model']}: {trend}"


# --- the run's one page ---------------------------------------------------------------------------------

STAGE_REPORTS = {"generate": "generate/stats.json", "audit": "audit/report.html", "decontaminate": "decontaminate/report.html",
                 "binarize": "binarize/report.html", "dpo": "dpo/report.html", "eval": "eval/winrate/report.html"}


def write_loop_report(out: Path, state: dict, judge: str = "embedded") -> Path:
    """OUT/report.html: one row per stage (its line, its time, a link to its own report), then
    the pairs DPO learned from and the before/after figures."""
    import html

    from notos.report import html as page

    rows = []
    for name, record in sorted(state["stages"].items(), key=lambda kv: kv[1].get("order", 0)):
        link = STAGE_REPORTS.get(name)
        target = f'<a href="{link}">{link}</a>' if link and (out / link).exists() else ""
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(DESCRIBE[name](record['summary']))}</td>"
                    f"<td>{record.get('seconds', 0):.0f} s</td><td>{target}</td></tr>")
    table = "<table><tr><th>stage</th><th>what it did</th><th>time</th><th>report</th></tr>" + "".join(rows) + "</table>"
    intro = ("<p>AI feedback, the bad labels found, a benchmark's prompts kept out, Notus's binarization, "
             "DPO, and the model before and after, in one run. Rerun the same command to resume.</p>")
    sections = [intro, table, f"<p><em>{html.escape(SMALL_JUDGE_CAVEAT)}</em></p>" if judge == "embedded" else ""]
    removed = state["stages"].get("decontaminate", {}).get("summary", {}).get("removed") or []
    if removed:
        sections.append("<h2>Caught by decontamination</h2>" + page.table_html(removed))
    pairs = out / "binarize" / "data.parquet"
    if pairs.exists():
        import pyarrow.parquet as pq

        table = pq.read_table(pairs)
        keep = [c for c in ("prompt_id", "score_chosen", "score_rejected") if c in table.column_names]
        sample = [{**{k: r[k] for k in keep}, "chosen": _last_text(r["chosen"]), "rejected": _last_text(r["rejected"])}
                  for r in table.slice(0, 10).to_pylist()]
        sections.append("<h2>Pairs DPO learned from (first 10)</h2>" + page.table_html(sample))
    return page.write_report(out, "notos quickstart: the whole loop", sections)


def _last_text(value) -> str:
    """A TRL conversational answer ([{role, content}]) or plain text, as text."""
    if isinstance(value, list) and value:
        return str(value[-1].get("content", ""))
    return str(value or "")


DESCRIBE = {
    "generate": lambda s: f"{s['rows']} of {s['prompts_in']} prompts kept, each answered 3 times and every answer rated 1-5 "
                          f"by the embedded model ({s['answers']} answers)",
    "audit": lambda s: f"{s['completions']} answers checked, {s['dropped_as_broken']} dropped as broken labels ({_counts_text(s.get('flag_counts'), 'no flags')})",
    "decontaminate": _removed_text,
    "binarize": lambda s: f"{s['pairs']} (chosen, rejected) pairs from {s['prompts']} prompts by the mean rating "
                          f"(Notus's rule); no pair: {_counts_text(s.get('dropped'), 'none')}",
    "dpo": _margin_text,
    "eval": winrate_line,
}
