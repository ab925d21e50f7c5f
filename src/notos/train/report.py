"""report.html of a training run: loss (train and eval) and, for DPO, the implicit rewards and
their margin and accuracy, plus the final figures and the recipe. Uses curate's page writer."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import asdict
from pathlib import Path

from notos.report.html import table_html, write_report
from notos.train.config import Common

CURVES = {
    "loss": ["loss", "eval_loss"],
    "DPO rewards": ["rewards/chosen", "rewards/rejected", "rewards/margins"],
    "accuracy": ["rewards/accuracies", "eval_rewards/accuracies", "accuracy", "eval_accuracy"],
}


def write_training_report(out: Path, recipe: Common, history: list[dict], summary: dict) -> Path:
    intro = (f"<p>{html.escape(recipe.kind.upper())} on <code>{html.escape(recipe.model)}</code>, "
             f"{summary.get('steps', 0)} steps. Data: <code>{html.escape(str(recipe.data))}</code>.</p>")
    sections = [intro]
    for title, keys in CURVES.items():
        sections.append(_curve_section(title, keys, history))
    sections.append("<h2>Final figures</h2>" + table_html([{"metric": k, "value": v} for k, v in summary.items()]))
    sections.append("<h2>Recipe</h2>" + table_html([{"key": k, "value": v} for k, v in asdict(recipe).items()], limit=100))
    return write_report(out, f"notos train {recipe.kind}: {out.name}", sections)


def _curve_section(title: str, keys: list[str], history: list[dict]) -> str:
    series = {k: [(e["step"], e[k]) for e in history if k in e and "step" in e] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return ""
    import matplotlib

    matplotlib.use("Agg")  # no display: reports are written on servers and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.0), dpi=90)
    for key, points in series.items():
        ax.plot([s for s, _ in points], [v for _, v in points], marker="." if len(points) < 30 else None, label=key)
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    image = base64.b64encode(buffer.getvalue()).decode()
    return f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{image}">'
