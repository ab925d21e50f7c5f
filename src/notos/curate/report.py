"""The curation sections of report.html, drawn from the statistics a run already holds
(`notos.curate.tally`, kept in stats.json under "report"), never from the input.

What a data scientist looks for first: what was removed and why (the truthful_qa source rule
apart from text matches), each kind of audit finding in its own section and colour with the
worst examples shown as text (prompt, completion, critique, rationales), informational N/A
ratings apart from defects, the critique score against the aspect ratings, the ratings per
aspect and per model, and the length of chosen against rejected responses. The page kit is
`notos.report.html`. Charts are plain HTML bars and inline SVG: they draw in milliseconds
(matplotlib took ~4 s a report), stay sharp at any zoom, and carry their numbers as tooltips.
"""

from __future__ import annotations

import html

import numpy as np

from notos.report.html import table_html

FLAG_COLOURS = {"critique_disagrees": "#c0392b", "rating_contradicts_rationale": "#8e44ad",
                "missing_rating": "#d68910", "missing_critique_score": "#b9770e", "duplicate_response": "#1f77b4",
                "na_rating": "#7f8c8d"}
FLAG_TITLES = {
    "critique_disagrees": "Critique score contradicts the aspect ratings",
    "rating_contradicts_rationale": "Rating contradicts its own rationale",
    "missing_rating": "Aspect without a rating",
    "missing_critique_score": "Critique without a readable score",
    "duplicate_response": "Same response twice for one prompt",
    "na_rating": "Aspect rated N/A",
}
INFORMATIONAL = ("na_rating",)
STYLE = """<style>
.flag { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 0.4em; }
.ex td { max-width: 22em; } .ex .text { max-height: 12em; overflow: auto; white-space: pre-wrap; }
.ex .why { font-size: 0.9em; } .muted { color: #777; } .note { background: #fff7e0; padding: 0.5em 0.8em; }
.bars td { border: none; padding: 0.1em 0.4em; } .bar { height: 0.9em; display: inline-block; }
.stack { display: flex; width: 24em; height: 0.9em; } .stack span { height: 100%; }
.grid td { width: 1.6em; height: 1.1em; padding: 0; border: 1px solid #fff; font-size: 0.7em; text-align: center; }
.charts { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
</style>"""


def bars(items: list[tuple[str, float, str]], width_em: float = 18.0) -> str:
    """Horizontal bars: (label, value, colour) each, scaled to the largest."""
    top = max([v for _, v, _ in items] + [1])
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td><span class='bar' title='{value:g}' "
        f"style='width:{width_em * value / top:.2f}em;background:{tint}'></span> {value:g}</td></tr>"
        for label, value, tint in items)
    return f"<table class='bars'>{rows}</table>"


def colour(flag: str) -> str:
    return FLAG_COLOURS.get(flag, "#555")


def _swatch(flag: str) -> str:
    return f'<span class="flag" style="background:{colour(flag)}"></span>'


# --- removals ------------------------------------------------------------------------------------

def removal_section(title: str, stats: dict, head: list[dict]) -> str:
    by_reason = stats.get("removed_by_reason") or {}
    parts = [f"<h2>{html.escape(title)}</h2>",
             f"<p>{stats.get('prompts_removed', 0)} of {stats.get('prompts_in', 0)} prompts removed.</p>"]
    if by_reason:
        parts.append(table_html([{"reason": k, "prompts": v} for k, v in by_reason.items()]))
    note = stats.get("source_rule")
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    if head:
        columns = [c for c in ("prompt_id", "reason", "source", "benchmark_id", "overlap", "similarity",
                               "representative", "prompt") if c in head[0]]
        parts.append(table_html(head, columns, limit=20))
    return "\n".join(parts)


# --- audit -----------------------------------------------------------------------------------------

def flag_overview(summary: dict) -> str:
    counts = summary.get("flag_counts") or {}
    defects = {k: v for k, v in counts.items() if k not in INFORMATIONAL}
    if not counts:
        return ""
    chart = bars([(k, v, colour(k)) for k, v in defects.items()])
    rows = "".join(f"<tr><td>{_swatch(k)}{html.escape(FLAG_TITLES.get(k, k))}</td><td><code>{k}</code></td>"
                   f"<td>{v}</td></tr>" for k, v in defects.items())
    info = "".join(f"<li>{_swatch(k)}{html.escape(FLAG_TITLES.get(k, k))}: {counts.get(k, 0)} completions "
                   "(informational: no defect, counts 0 toward severity)</li>" for k in INFORMATIONAL if k in counts)
    return (f"{STYLE}<h2>Audit findings</h2><p>{summary.get('flagged', 0)} of {summary.get('completions', 0)} "
            f"completions flagged ({100 * summary.get('share_flagged', 0):.1f}%).</p>{chart}"
            f"<table><tr><th>finding</th><th>flag</th><th>completions</th></tr>{rows}</table><ul>{info}</ul>")


def flag_sections(summary: dict, examples: dict) -> list[str]:
    """One section per kind of finding, defects first, each with its worst examples as text."""
    counts = summary.get("flag_counts") or {}
    order = [f for f in counts if f not in INFORMATIONAL] + [f for f in counts if f in INFORMATIONAL]
    out = []
    for flag in order:
        if not counts.get(flag):
            continue
        label = "Informational: " if flag in INFORMATIONAL else ""
        shown = examples.get(flag) or []
        out.append(f'<h2 style="border-left: 6px solid {colour(flag)}; padding-left: 0.4em">{label}'
                   f'{html.escape(FLAG_TITLES.get(flag, flag))} <span class="muted">({counts[flag]} completions, '
                   f'<code>{flag}</code>)</span></h2>' + _by_aspect(summary, flag) + _examples(shown, flag))
    return out


def _by_aspect(summary: dict, flag: str) -> str:
    key = {"rating_contradicts_rationale": "contradictions_by_aspect", "missing_rating": "missing_by_aspect",
           "na_rating": "na_by_aspect"}.get(flag)
    values = summary.get(key) if key else None
    if not values:
        return ""
    return "<p>By aspect: " + ", ".join(f"{html.escape(a)} {n}" for a, n in values.items()) + "</p>"


def _examples(examples: list[dict], flag: str) -> str:
    if not examples:
        return ""
    rows = []
    for e in examples:
        why = [r for f, r in zip(e["flags"], e["reasons"]) if f == flag] or e["reasons"]
        rationales = "".join(
            f"<div><b>{html.escape(a['aspect'].replace('_', ' '))}</b>: {_rating_text(a)} — "
            f"{html.escape(a['rationale'] or '')}</div>" for a in e["aspects"])
        score = "" if e["overall_score"] is None else f"<b>overall {e['overall_score']:g}</b><br>"
        rows.append(
            f"<tr><td><div class='text'>{html.escape(e['prompt'] or '')}</div>"
            f"<div class='muted'>prompt {html.escape(str(e['prompt_id']))}</div></td>"
            f"<td><div class='muted'>{html.escape(str(e['model']))}, completion {e['completion_index']}</div>"
            f"<div class='text'>{html.escape(e['response'] or '')}</div></td>"
            f"<td>{score}<div class='text'>{html.escape(e['critique'] or '')}</div></td>"
            f"<td><div class='text'>{rationales}</div></td>"
            f"<td class='why'>{'<br>'.join(html.escape(w) for w in why)}</td></tr>")
    head = "<tr><th>prompt</th><th>completion</th><th>critique</th><th>ratings and rationales</th><th>why</th></tr>"
    return f"<table class='ex'>{head}{''.join(rows)}</table>"


def _rating_text(aspect: dict) -> str:
    if aspect["na"]:
        return "N/A"
    return "no rating" if aspect["rating"] is None else f"{aspect['rating']:g}"


# --- ratings -------------------------------------------------------------------------------------

def heat_section(report: dict) -> str:
    """Critique overall_score (1-10) against the mean of the aspect ratings (1-5), as counts: the
    diagonal is agreement, the top-left corner Notus's finding; flagged completions beside."""
    heat = report.get("heat") or {}
    grid = np.array(heat.get("all") or [[0]])
    if grid.sum() == 0:
        return ""
    flagged = np.array(heat["flagged"])
    panels = "".join(_grid(counts, heat["overall"], heat["mean"], title, rgb)
                     for counts, title, rgb in ((grid, "all completions", "74,120,168"),
                                                (flagged, "flagged by the audit", "192,57,43")))
    return (f"<h2>Critique score vs aspect ratings</h2><p>{int(grid.sum())} completions with both (darker: more; "
            f"hover a cell for its count). Agreement runs along the diagonal; a high critique score over low "
            f"ratings (top left) decides the chosen response of critique-score binarization.</p>"
            f"<div class='charts'>{panels}</div>")


def _grid(counts: np.ndarray, overall: list, means: list, title: str, rgb: str) -> str:
    shade = np.log1p(counts) / max(np.log1p(counts).max(), 1e-9)
    rows = []
    for i in range(len(overall) - 1, -1, -1):  # 10 at the top
        cells = "".join(f"<td title='critique {overall[i]}, mean {means[j]:.2f}: {int(counts[i, j])}' "
                        f"style='background:rgba({rgb},{shade[i, j]:.2f})'></td>" for j in range(len(means)))
        rows.append(f"<tr><th>{overall[i]}</th>{cells}</tr>")
    axis = "".join(f"<th>{m:g}</th>" if float(m).is_integer() else "<th></th>" for m in means)
    return (f"<div><b>{html.escape(title)}</b><table class='grid'>{''.join(rows)}<tr><th></th>{axis}</tr></table>"
            f"<div class='muted'>rows: critique score; columns: mean aspect rating</div></div>")


def rating_section(report: dict) -> str:
    aspects = report.get("aspects") or []
    if not aspects:
        return ""
    labels = report["rating_labels"]
    tints = ["#4a78a8"] * 5 + [colour("na_rating"), colour("missing_rating")]
    charts = "".join(f"<div><b>{html.escape(a.replace('_', ' '))}</b>"
                     f"{bars(list(zip(labels, report['ratings'][a], tints)), 8)}</div>" for a in aspects)
    return "\n".join(["<h2>Ratings per aspect</h2>", f"<div class='charts'>{charts}</div>",
                      model_section(report.get("models") or [])])


MEAN_PALETTE = ["#bbbbbb", "#c0392b", "#e67e22", "#f1c40f", "#7fb77e", "#27ae60"]


def model_section(models: list[dict]) -> str:
    """Per model: the distribution of its completions' mean aspect rating (rounded), stacked."""
    if not models:
        return ""
    legend = " ".join(f"<span class='flag' style='background:{t}'></span>{label}"
                      for t, label in zip(MEAN_PALETTE, ["no rating", "1", "2", "3", "4", "5"]))
    rows = []
    for m in models:
        counts = np.array(m["rounded_mean_counts"], float)
        shares = counts / max(counts.sum(), 1)
        stack = "".join(f"<span title='{label}: {int(c)}' style='width:{100 * sh:.2f}%;background:{t}'></span>"
                        for t, label, c, sh in zip(MEAN_PALETTE, ["no rating", "1", "2", "3", "4", "5"], counts, shares))
        rows.append(f"<tr><td>{html.escape(m['model'])}</td><td><div class='stack'>{stack}</div></td>"
                    f"<td>{m['completions']}</td><td>{_number(m['mean_rating'])}</td>"
                    f"<td>{_number(m['mean_overall_score'])}</td></tr>")
    head = ("<tr><th>model</th><th>mean aspect rating, rounded (share of its completions)</th><th>completions</th>"
            "<th>mean rating</th><th>mean critique score</th></tr>")
    return f"<h3>Ratings per model</h3><p>{legend}</p><table class='bars'>{head}{''.join(rows)}</table>"


def _number(value) -> str:
    return "" if value is None else f"{value:.2f}"


def length_section(report: dict, name: str) -> str:
    """Chosen vs rejected response length: DPO data that always prefers the longer answer
    teaches length, not quality."""
    data = (report.get("lengths") or {}).get(name)
    if not data or not data["pairs"]:
        return ""
    chosen, rejected = np.array(data["chosen"][:40], float), np.array(data["rejected"][:40], float)
    top = max(chosen.max(), rejected.max(), 1)
    width, height, step = 480, 120, 12
    shapes = []
    for counts, tint in ((rejected, "#c0392b"), (chosen, "#27ae60")):
        points = " ".join(f"{k * step},{height - height * c / top:.1f} {(k + 1) * step},{height - height * c / top:.1f}"
                          for k, c in enumerate(counts))
        shapes.append(f"<polygon points='0,{height} {points} {width},{height}' fill='{tint}' fill-opacity='0.45'/>")
    axis = "".join(f"<text x='{k * step * 10}' y='{height + 12}' font-size='9'>{k * 1000}</text>" for k in range(4))
    svg = (f"<svg width='{width + 30}' height='{height + 16}' role='img'>{''.join(shapes)}{axis}</svg>"
           "<div class='muted'>characters (0-4000; longer ones left out); "
           "<span style='color:#27ae60'>chosen</span>, <span style='color:#c0392b'>rejected</span></div>")
    return (f"<h3>Length of chosen vs rejected ({html.escape(name)})</h3><p>Chosen is longer in "
            f"{data['chosen_longer']:.1%} of {data['pairs']} pairs; median length chosen {data['median_chosen']:.0f}, "
            f"rejected {data['median_rejected']:.0f} characters.</p>{svg}")
