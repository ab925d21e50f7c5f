"""The report.html pages (and the folder around the win-rate one) of `notos eval mt-bench`
and `notos eval winrate`, built with the page kit in notos.report.html."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from notos.data.atomic import write_json
from notos.data.mt_bench import FAILED, Question


def write_mt_bench_report(out_dir: Path, summary: dict, questions: list[Question], judgments: list[dict]) -> Path:
    """report.html: the figures, a bar per category and turn, every question's scores, the unread verdicts."""
    from html import escape

    from notos.evaluate.compare_runs import grouped_bars
    from notos.report.html import table_html, write_report

    cats = list(summary["per_category"])
    turns = summary["per_category_turn"]
    plot = grouped_bars(cats, {"turn 1": [turns[c]["turn_1"] for c in cats], "turn 2": [turns[c]["turn_2"] for c in cats]},
                        ylabel="judge score (1-10)", ymax=10) if any(summary["per_category"].values()) else ""
    head = [{"figure": k, "value": summary[k]} for k in ("overall", "turn_1", "turn_2", "n_questions", "n_judged",
                                                         "n_failed_to_parse", "n_unanswered", "n_unjudged")]
    by_cat = [{"category": c, "turn 1": turns[c]["turn_1"], "turn 2": turns[c]["turn_2"], "mean": summary["per_category"][c]}
              for c in cats]
    order = {q.key: i for i, q in enumerate(questions)}
    per_question: dict[str, dict] = {}
    for r in judgments:
        row = per_question.setdefault(str(r["question_id"]), {"question_id": r["question_id"], "category": r.get("category")})
        row[f"turn {r['turn']}"] = r["score"]
    rows = sorted(per_question.values(), key=lambda r: order.get(str(r["question_id"]), len(order)))
    failed = [{"question_id": r["question_id"], "turn": r["turn"], "why": r.get("parse_error"), "judgment": r["judgment"]}
              for r in judgments if r["score"] == FAILED]
    sections = [
        f"<p>Model <code>{escape(str(summary.get('model')))}</code>, judge <code>{escape(str(summary.get('judge')))}</code>. "
        "Scores 1-10 per turn; verdicts that could not be read (score -1) are left out of the means.</p>",
        table_html(head), "<h2>Per category</h2>", plot, table_html(by_cat),
        "<h2>Per question</h2>", table_html(rows, ["question_id", "category", "turn 1", "turn 2"], limit=200),
        "<h2>Verdicts that could not be read</h2>", table_html(failed),
    ]
    return write_report(out_dir, "MT-Bench", sections)


def write_winrate_folder(out_dir, summary: dict, config: dict, annotations: list[dict] | None = None,
                         save_annotations: bool = True) -> Path:
    """summary.json, config.json, report.html and (unless they came from a file) annotations.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if annotations is not None and save_annotations:
        write_json(out_dir / "annotations.json", annotations)
    write_json(out_dir / "summary.json", summary)
    write_json(out_dir / "config.json", config)
    write_winrate_report(out_dir, summary, annotations or [])
    return out_dir


def write_winrate_report(out_dir: Path, summary: dict, annotations: list[dict]) -> Path:
    from notos.report.html import counts_section, table_html, write_report

    def pct(value):
        return "-" if value is None else f"{value:.2f}%"

    headline = [{"figure": "win rate (ties count half)", "value": f"{pct(summary['win_rate'])} ± {pct(summary['standard_error'])}"},
                {"figure": "length-controlled win rate", "value": pct(summary.get("length_controlled_win_rate")) + (f" ({summary['lc_note']})" if summary.get("lc_note") else "")},
                {"figure": "verdicts / no verdict", "value": f"{summary['n_total']} / {summary['n_missing']}"},
                {"figure": "average length, model / baseline (characters)", "value": f"{summary['avg_length']:.0f} / {summary['avg_length_baseline']:.0f}"}]
    if summary.get("judge"):
        headline.append({"figure": "judge", "value": f"{summary['judge']} ({'both orders' if summary.get('both_orders') else 'one order'}; "
                                                    f"{summary.get('n_inconsistent', 0)} pairs where the orders disagreed)"})
    sections = [f"<p>{summary['model']} (output_2) against {summary['baseline']} (output_1).</p>", table_html(headline),
                counts_section("Verdicts", {"model wins": summary["n_wins"], "baseline wins": summary["n_wins_base"],
                                            "tie or soft preference": summary["n_draws"], "no verdict": summary["n_missing"]}),
                _length_section(summary, annotations)]
    rows = [{"instruction": a["instruction"], "preference": a["preference"], "model length": len(a["output_2"]),
             "baseline length": len(a["output_1"])} for a in annotations]
    if rows:
        sections += ["<h2>Annotations</h2>", table_html(rows)]
    return write_report(out_dir, f"Win rate: {summary['model']} vs {summary['baseline']}", sections)


def _length_section(summary: dict, annotations: list[dict]) -> str:
    """The model's win share by length difference, with the fitted length effect: how much of
    the win rate is length."""
    from notos.report.html import png, pyplot

    judged = [a for a in annotations if a["preference"] is not None]
    if len(judged) < 5:
        return ""
    diff = np.array([len(a["output_2"]) - len(a["output_1"]) for a in judged], dtype=float)
    share = np.array([a["preference"] - 1 for a in judged])
    edges = np.unique(np.quantile(diff, np.linspace(0, 1, min(8, len(judged) // 5) + 1)))
    span = (min(0.0, float(np.quantile(diff, 0.01))), max(0.0, float(np.quantile(diff, 0.99))))  # one huge answer must not squash the rest
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.0), dpi=90)
    if len(edges) > 1:
        bins = np.clip(np.searchsorted(edges, diff, side="right") - 1, 0, len(edges) - 2)
        centres = [float(np.mean(diff[bins == b])) for b in range(len(edges) - 1) if np.any(bins == b)]
        means = [100 * float(np.mean(share[bins == b])) for b in range(len(edges) - 1) if np.any(bins == b)]
        ax.plot(centres, means, "o", color="#4a78a8", label="observed (binned)")
    if summary.get("length_coefficient") is not None and summary.get("length_controlled_win_rate") is not None:
        lc = summary["length_controlled_win_rate"] / 100
        grid = np.linspace(*span, 100)
        logit = math.log(lc / (1 - lc)) if 0 < lc < 1 else 0.0
        curve = 100 / (1 + np.exp(-(logit + summary["length_coefficient"] * np.tanh(grid / summary["length_scale"]))))
        ax.plot(grid, curve, color="#e08a3c", label="fitted length effect")
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlim(span[0] - 0.05 * (span[1] - span[0]), span[1] + 0.05 * (span[1] - span[0]))
    ax.set_xlabel("length difference, model - baseline (characters)")
    ax.set_ylabel("model win share (%)")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=7)
    return f"<h2>Win share by length difference</h2>{png(plt, fig)}"
