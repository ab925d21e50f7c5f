"""The HTML kit every report.html is made with: one self-contained page, static matplotlib
plots (Agg backend, no display) inlined as PNG, plain tables. Sections are functions that
return HTML strings; `write_report` puts them on a page."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: reports are written on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def figure(width=6.0, height=3.2):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(width, height), dpi=90)
    return plt, fig, ax


def png(plt, fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def table_html(rows: list[dict], columns: list[str] | None = None, limit: int = 50) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows[:limit]
    )
    more = f"<p>... {len(rows) - limit} more rows in the data file.</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    text = "" if value is None else str(value)
    return text if len(text) <= 160 else text[:157] + "..."


def counts_section(title: str, counts: dict[str, int]) -> str:
    """A bar chart and a table of counts (removals by reason, flags by kind...)."""
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        return f"<h2>{html.escape(title)}</h2><p>none</p>"
    plt, fig, ax = figure(4.6, 0.5 + 0.35 * len(counts))
    names = list(counts)
    ax.barh(names, [counts[n] for n in names], color="#4a78a8")
    ax.invert_yaxis()
    ax.tick_params(labelsize=8)
    rows = [{"what": k, "count": v} for k, v in counts.items()]
    return f"<h2>{html.escape(title)}</h2>{png(plt, fig)}{table_html(rows)}"


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; }} code {{ background: #f3f3f3; }}
</style></head><body><h1>{title}</h1>{body}</body></html>"""


def write_report(out_dir: str | Path, title: str, sections: list[str]) -> Path:
    path = Path(out_dir) / "report.html"
    body = "\n".join(s for s in sections if s)
    path.write_text(PAGE.format(title=html.escape(title), body=body), encoding="utf-8")
    return path
