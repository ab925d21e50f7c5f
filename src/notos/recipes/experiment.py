"""`notos experiment binarization`: the question the Notus authors left open. Once the critique
data is fixed, what trains the better model: the critique's overall score, or the mean of the
aspect ratings?

    audit        `notos curate audit` on the input; completions flagged as broken labels
                 (--drop-flags) are dropped: the same fixed data for every rule
    pairs-RULE   `notos curate binarize` under each rule (critique = overall score, mean = the
                 mean aspect rating, or any other binarize strategy)
    compare      how often two rules choose a different response (the chosen-changed share)
    train-RULE   one DPO run per rule: the same recipe, start model and seed
    answers      each model (the start model and one per rule) answers the same held-out
                 MT-Bench first turns, greedily
    judge        pairwise win rates, both orders, with standard errors: each rule's model
                 against the start, and every two rules' models against each other
    mt-bench     with a real judge: MT-Bench single grading of every model
    report.html  the shares, the training curves side by side, the win rates with error bars,
                 and a sentence that names the winner or says the difference is within noise

Every stage is resumable (loop.run_stage): rerun the same command and finished stages take
seconds, an interrupted training resumes from its last checkpoint. On the embedded model the
whole run is a mechanics check, and every output says so; the same command with `--judge
openai:gpt-4o --set train.model=HUB_ID` (and a GPU recipe) is the experiment itself.
"""

from __future__ import annotations

import html
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from notos.errors import NotosError
from notos.recipes.loop import (
    MT_BENCH,
    answer,
    audit_and_fix,
    benchmark_instructions,
    binarize_into,
    file_stamp,
    judge_pair,
    open_out,
    read_metrics,
    run_stage,
    start_model_spec,
    train_dpo,
    trained_model_spec,
    winrate_line,
)

TOOL = "notos experiment binarization"
RULES = {"critique": "overall", "overall": "overall", "mean": "mean", "best-worst": "best-worst", "all-pairs": "all-pairs"}
START = "start"
NOISE_Z = 1.96  # a head-to-head win rate this many standard errors from 50% names a winner
MIN_PROMPTS = 10  # below this, a standard error says little: no winner is named
MECHANICS = ("Mechanics check: the models and the judge are the small embedded model, so these figures show that the "
             "experiment runs end to end, not which rule is better. Run it with a strong judge (--judge openai:gpt-4o) "
             "and a real start model (--set train.model=...) for an answer.")


@dataclass
class ExperimentOptions:
    input: Path
    out: Path
    rules: list[str] = field(default_factory=lambda: ["critique", "mean"])
    judge: str = "embedded"
    recipe: str = "quickstart-dpo"
    train_sets: list[str] = field(default_factory=list)
    eval_prompts: int = 16
    max_new_tokens: int = 64
    mt_bench: bool | None = None  # None: when the judge is not the embedded model
    drop_flags: list[str] = field(default_factory=lambda: ["missing_rating", "duplicate_response"])
    format: str = "auto"
    seed: int = 0
    progress: bool = True


def check_rules(rules: list[str]) -> None:
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise NotosError(f"--rules: unknown rule '{unknown[0]}' (rules: {', '.join(RULES)})")
    if len(rules) < 2 or len({RULES[r] for r in rules}) != len(rules):
        raise NotosError(f"--rules {','.join(rules)}: name at least two different rules (e.g. critique,mean)")


def run_binarization(o: ExperimentOptions) -> dict:
    """Every stage in order (see the module doc); returns {stage: summary}."""
    from notos.curate.audit import FLAGS
    from notos.recipes.loop import dpo_recipe, trained_before

    check_rules(o.rules)
    bad = [f for f in o.drop_flags if f not in FLAGS]
    if bad:
        raise NotosError(f"--drop-flags: unknown flag '{bad[0]}' (flags: {', '.join(FLAGS)})")
    sets = ["merge=true", *o.train_sets]
    out = Path(o.out)
    if not trained_before(out, [f"train-{rule}" for rule in o.rules]):
        dpo_recipe(o.recipe, sets)
    state = open_out(out, TOOL)
    done: dict[str, dict] = {}
    fixed = out / "audit" / "fixed.parquet"
    done["audit"] = run_stage(out, state, "audit", {"input": file_stamp(Path(o.input).resolve()), "drop": o.drop_flags,
                                               "format": o.format},
                              lambda: audit_and_fix(Path(o.input), out / "audit", o.drop_flags, o.format),
                              lambda s: f"{s['completions']} completions audited, {s['dropped_as_broken']} dropped as broken "
                                        f"labels; critique disagrees with its ratings on {_count(s, 'critique_disagrees')}",
                              folder=out / "audit")
    for rule in o.rules:
        done[f"pairs-{rule}"] = run_stage(
            out, state, f"pairs-{rule}", {"strategy": RULES[rule], "seed": o.seed},
            lambda rule=rule: binarize_into(fixed, out / f"pairs-{rule}", RULES[rule], o.seed),
            lambda s, rule=rule: f"rule '{rule}': {s['pairs']} pairs from {s['prompts']} prompts", folder=out / f"pairs-{rule}")
    done["compare"] = run_stage(out, state, "compare", {"rules": o.rules}, lambda: compare_rules(out, o.rules), _compare_line)
    for rule in o.rules:
        done[f"train-{rule}"] = run_stage(
            out, state, f"train-{rule}", {"recipe": o.recipe, "sets": sets},
            lambda rule=rule: train_dpo(o.recipe, sets, out / f"pairs-{rule}", out / f"train-{rule}"),
            lambda s, rule=rule: f"rule '{rule}': {s['steps']} DPO steps, final loss {_num(s.get('final_loss'))}, reward "
                                 f"margin on its pairs {_num(s.get('margin_after'))}", folder=out / f"train-{rule}")
    start = start_model_spec(done[f"train-{o.rules[0]}"]["model"])
    arms = {START: start, **{rule: None for rule in o.rules}}  # trained specs resolved when answering
    done["answers"] = run_stage(out, state, "answers", {"n": o.eval_prompts, "tokens": o.max_new_tokens},
                                lambda: answer_all(out, o, arms), lambda s: f"{len(s['arms'])} models answered "
                                f"{s['instructions']} MT-Bench first turns", folder=out / "answers")
    for a, b in comparisons(o.rules):
        done[f"judge-{a}-vs-{b}"] = run_stage(
            out, state, f"judge-{a}-vs-{b}", {"judge": o.judge},
            lambda a=a, b=b: judge_pair(_outputs(out, a), _outputs(out, b), o.judge, out / "judge" / f"{a}-vs-{b}", o.progress),
            winrate_line, folder=out / "judge" / f"{a}-vs-{b}")
    if o.mt_bench if o.mt_bench is not None else o.judge != "embedded":
        done["mt-bench"] = run_stage(out, state, "mt-bench", {"judge": o.judge, "n": o.eval_prompts, "tokens": o.max_new_tokens},
                                     lambda: grade_mt_bench(out, o, arms), _mt_bench_line, folder=out / "mt-bench")
    report = write_experiment_report(out, o, done)
    for sentence in verdicts(o.rules, done, o.judge):
        print(sentence, flush=True)
    if o.judge == "embedded":
        print(MECHANICS, flush=True)
    print(f"{'report':<14} {report}", flush=True)
    return done


def comparisons(rules: list[str]) -> list[tuple[str, str]]:
    """Each rule's model against the start, then every two rules' models head to head."""
    return [(rule, START) for rule in rules] + list(itertools.combinations(rules, 2))


def compare_rules(out: Path, rules: list[str]) -> dict:
    """The chosen-changed share (and rejected, either) for every two rules."""
    import pyarrow.parquet as pq

    from notos.curate.compare import compare

    shares = {}
    for a, b in itertools.combinations(rules, 2):
        result = compare(pq.read_table(out / f"pairs-{a}" / "data.parquet"), pq.read_table(out / f"pairs-{b}" / "data.parquet"))
        keys = ("prompts_both", "only_a", "only_b", "chosen_differs", "rejected_differs", "either_differs",
                "n_chosen_differs", "n_rejected_differs", "n_either_differs")
        shares[f"{a} vs {b}"] = {k: result.get(k) for k in keys}
    return {"pairs": shares}


def answer_all(out: Path, o: ExperimentOptions, arms: dict) -> dict:
    instructions = benchmark_instructions(MT_BENCH, o.eval_prompts, out / "answers" / "instructions.jsonl")
    for arm, spec in arms.items():
        spec = spec or trained_model_spec(out / f"train-{arm}")
        answer(spec, arm, instructions, out / "answers" / arm, o.max_new_tokens, o.progress)
    return {"arms": list(arms), "instructions": min(o.eval_prompts, 80)}


def _outputs(out: Path, arm: str) -> Path:
    return out / "answers" / arm / "outputs.json"


def grade_mt_bench(out: Path, o: ExperimentOptions, arms: dict) -> dict:
    """MT-Bench single grading (both turns, 1-10) of every model by the judge."""
    from notos.evaluate.mt_bench import run_mt_bench

    scores = {}
    for arm, spec in arms.items():
        spec = spec or trained_model_spec(out / f"train-{arm}")
        summary = run_mt_bench(spec, o.judge, MT_BENCH, out / "mt-bench" / arm, limit=o.eval_prompts,
                               max_new_tokens=o.max_new_tokens, model_name=arm, progress=o.progress)
        scores[arm] = {"overall": summary.get("overall"), "turn_1": summary.get("turn_1"), "turn_2": summary.get("turn_2")}
    return {"scores": scores}


# --- lines and verdicts -------------------------------------------------------------------------------

def _count(summary: dict, flag: str) -> int:
    return int((summary.get("flag_counts") or {}).get(flag, 0))


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _share(entry: dict, key: str) -> str:
    share = entry.get(key)
    return "-" if share is None else f"{100 * share:.0f}% ({entry.get(f'n_{key}')} of {entry['prompts_both']})"


def _compare_line(s: dict) -> str:
    return "; ".join(f"{k}: the chosen response differs on {_share(v, 'chosen_differs')} of the prompts both pair"
                     for k, v in s["pairs"].items())


def _mt_bench_line(s: dict) -> str:
    return "MT-Bench " + ", ".join(f"{arm} {_num(v['overall'])}" for arm, v in s["scores"].items())


def verdicts(rules: list[str], done: dict, judge: str) -> list[str]:
    """One plain sentence per head-to-head: the winner, or within noise."""
    out = []
    for a, b in itertools.combinations(rules, 2):
        s = done.get(f"judge-{a}-vs-{b}") or {}
        rate, se = s.get("win_rate"), s.get("standard_error")
        if rate is None:
            out.append(f"'{a}' vs '{b}': no verdict could be read; nothing to conclude.")
            continue
        n = s.get("n_total") or 0
        figure = f"{rate:.1f}% ± {se or 0:.1f} over {n} prompts, judged by {s.get('judge') or judge}"
        decided = rate != 50 and (abs(rate - 50) > NOISE_Z * se if se else True)
        if n < MIN_PROMPTS:
            out.append(f"'{a}' vs '{b}': too few prompts to tell ('{a}' wins {figure}); use --eval-prompts {MIN_PROMPTS * 4} or more.")
        elif decided:
            winner = a if rate > 50 else b
            out.append(f"Rule '{winner}' trained the better model: '{a}' wins {figure} against '{b}'.")
        else:
            out.append(f"'{a}' vs '{b}': the difference is within noise ('{a}' wins {figure}; "
                       f"a winner needs more than {NOISE_Z} standard errors from 50%).")
    return out


# --- the report ----------------------------------------------------------------------------------------

def write_experiment_report(out: Path, o: ExperimentOptions, done: dict) -> Path:
    from notos.report import html as page

    setting = (f"<p>Input: <code>{html.escape(str(o.input))}</code>; rules: {', '.join(o.rules)}; recipe "
               f"<code>{html.escape(o.recipe)}</code> {html.escape(' '.join(o.train_sets))}; judge "
               f"<code>{html.escape(str(o.judge))}</code>.</p>")
    sections = [setting]
    if o.judge == "embedded":
        sections.append(f"<p><strong>{html.escape(MECHANICS)}</strong></p>")
    sections.append("<h2>Verdict</h2>" + "".join(f"<p>{html.escape(v)}</p>" for v in verdicts(o.rules, done, o.judge)))
    rows = [{"rule": r, "pairs": done[f"pairs-{r}"].get("pairs"), "train steps": done[f"train-{r}"].get("steps"),
             "final loss": done[f"train-{r}"].get("final_loss"),
             "reward margin on its pairs": done[f"train-{r}"].get("margin_after"),
             "win rate vs start (%)": done.get(f"judge-{r}-vs-{START}", {}).get("win_rate"),
             "SE": done.get(f"judge-{r}-vs-{START}", {}).get("standard_error")} for r in o.rules]
    sections.append("<h2>Arms</h2>" + page.table_html(rows))
    shares = [{"rules": k, **{n: _share(v, n) for n in ("chosen_differs", "rejected_differs", "either_differs")},
               "paired by only one": f"{v['only_a']} / {v['only_b']}"} for k, v in done["compare"]["pairs"].items()]
    sections.append("<h2>How often the rules choose differently</h2>" + page.table_html(shares))
    sections.append("<h2>Training curves</h2>" + _curves(out, o.rules))
    sections.append("<h2>Win rates (both orders, ties half, ± 1 standard error)</h2>" + _winrate_plot(o.rules, done)
                    + page.table_html([{"comparison": f"{a} vs {b}", **done[f"judge-{a}-vs-{b}"]} for a, b in comparisons(o.rules)]))
    if "mt-bench" in done:
        sections.append("<h2>MT-Bench single grading</h2>" + page.table_html(
            [{"model": arm, **v} for arm, v in done["mt-bench"]["scores"].items()]))
    links = ["audit/report.html"] + [f"pairs-{r}/report.html" for r in o.rules] + [f"train-{r}/report.html" for r in o.rules] \
        + [f"judge/{a}-vs-{b}/report.html" for a, b in comparisons(o.rules)]
    sections.append("<h2>Each stage's own report</h2><ul>" + "".join(
        f'<li><a href="{link}">{link}</a></li>' for link in links if (out / link).exists()) + "</ul>")
    return page.write_report(out, "notos experiment binarization: critique score or mean rating?", sections)


def _curves(out: Path, rules: list[str]) -> str:
    from notos.report import html as page

    plt = page.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=90)
    for rule in rules:
        logged = [m for m in read_metrics(out / f"train-{rule}") if "loss" in m and "step" in m]
        axes[0].plot([m["step"] for m in logged], [m["loss"] for m in logged], marker=".", label=rule)
        margins = [m for m in logged if "rewards/margins" in m]
        axes[1].plot([m["step"] for m in margins], [m["rewards/margins"] for m in margins], marker=".", label=rule)
    for ax, title in zip(axes, ("DPO loss", "reward margin (chosen - rejected)")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=8)
    return page.png(plt, fig)


def _winrate_plot(rules: list[str], done: dict) -> str:
    from notos.report import html as page

    pairs = [(a, b) for a, b in comparisons(rules) if done[f"judge-{a}-vs-{b}"].get("win_rate") is not None]
    if not pairs:
        return "<p>No verdict could be read.</p>"
    plt, fig, ax = page.figure(6, 0.6 + 0.45 * len(pairs))
    rates = [done[f"judge-{a}-vs-{b}"]["win_rate"] for a, b in pairs]
    errors = [done[f"judge-{a}-vs-{b}"].get("standard_error") or 0 for a, b in pairs]
    ax.barh([f"{a} vs {b}" for a, b in pairs], rates, xerr=errors, color="#4a78a8", capsize=4)
    ax.axvline(50, color="#888", linestyle="--", linewidth=1)
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("win rate of the first (%)", fontsize=8)
    return page.png(plt, fig)


def experiment_summary(out: Path) -> dict:
    """The stages' summaries of a finished experiment folder (for scripts and tests)."""
    state = json.loads((Path(out) / "stages.json").read_text(encoding="utf-8"))
    return {name: record.get("summary") for name, record in state["stages"].items()}
