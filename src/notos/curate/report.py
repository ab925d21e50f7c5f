"""The curation sections of report.html (ratings, critique vs ratings, length bias), drawn at
a modest size so a report of a 64k-prompt dataset stays a few hundred KB. The page kit is
`notos.report.html`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.data.completions import Completions, na_column, rating_column
from notos.report.html import figure, png, pyplot, table_html

MAX_SCATTER = 20_000  # points drawn in a scatter; more only blurs it and bloats the page


def aspect_means(c: Completions) -> np.ndarray:
    """Mean of the aspect ratings per completion, N/A and missing left out (NaN when none)."""
    if not c.aspects:
        return np.full(c.table.num_rows, np.nan)
    matrix = np.column_stack([_floats(c.table.column(rating_column(a))) for a in c.aspects])
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.sum(~np.isnan(matrix), axis=1)
        return np.where(counts > 0, np.nansum(matrix, axis=1) / np.maximum(counts, 1), np.nan)


def _floats(column) -> np.ndarray:
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(float)


def rating_section(c: Completions) -> str:
    """Distribution of each aspect's ratings (with N/A and missing), and mean rating per model."""
    if not c.aspects:
        return ""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(c.aspects), figsize=(2.4 * len(c.aspects), 2.8), dpi=90, squeeze=False)
    for ax, aspect in zip(axes[0], c.aspects):
        values = _floats(c.table.column(rating_column(aspect)))
        na = np.asarray(c.table.column(na_column(aspect)).to_numpy(zero_copy_only=False), dtype=bool)
        labels, counts = _rating_counts(values, na)
        ax.bar(labels, counts, color="#4a78a8")
        ax.set_title(aspect.replace("_", " "), fontsize=9)
        ax.tick_params(labelsize=7)
    parts = ["<h2>Ratings</h2>", png(plt, fig)]
    per_model = model_means(c)
    if per_model:
        parts.append("<h3>Mean aspect rating per model</h3>")
        parts.append(table_html(per_model, ["model", "completions", "mean_rating", "mean_overall_score"]))
    return "\n".join(parts)


def _rating_counts(values: np.ndarray, na: np.ndarray) -> tuple[list[str], list[int]]:
    finite = values[~np.isnan(values)]
    steps = sorted(set(np.round(finite).astype(int).tolist())) if finite.size else []
    labels = [str(s) for s in steps] + ["N/A", "missing"]
    counts = [int(np.sum(np.round(finite) == s)) for s in steps]
    counts += [int(np.sum(na)), int(np.sum(np.isnan(values) & ~na))]
    return labels, counts


def model_means(c: Completions) -> list[dict]:
    models = c.table.column("model").to_pylist()
    means = aspect_means(c)
    overall = _floats(c.table.column("overall_score"))
    out = []
    for model in sorted({m for m in models if m is not None}):
        mask = np.array([m == model for m in models])
        out.append({"model": model, "completions": int(mask.sum()),
                    "mean_rating": _nanmean(means[mask]), "mean_overall_score": _nanmean(overall[mask])})
    return sorted(out, key=lambda r: -(r["mean_rating"] if r["mean_rating"] is not None else -1))


def _nanmean(values: np.ndarray):
    values = values[~np.isnan(values)]
    return round(float(values.mean()), 3) if values.size else None


def critique_scatter_section(c: Completions, flagged: set[tuple[str, int]] | None = None) -> str:
    """Critique overall_score (1-10) against the mean of the aspect ratings (1-5): the plot that
    shows Notus's finding — a cloud along the diagonal and outliers where the two disagree."""
    overall = _floats(c.table.column("overall_score"))
    means = aspect_means(c)
    both = ~np.isnan(overall) & ~np.isnan(means)
    if not both.any():
        return ""
    index = np.flatnonzero(both)
    if index.size > MAX_SCATTER:
        index = np.random.default_rng(0).choice(index, MAX_SCATTER, replace=False)
    plt, fig, ax = figure(4.6, 3.6)
    jitter = np.random.default_rng(1).uniform(-0.08, 0.08, size=(2, index.size))
    ax.scatter(means[index] + jitter[0], overall[index] + jitter[1], s=4, alpha=0.3, color="#4a78a8", label="completion")
    if flagged:
        ids = c.table.column("prompt_id").to_pylist()
        positions = c.table.column("completion_index").to_pylist()
        hit = np.array([(ids[i], positions[i]) in flagged for i in index])
        if hit.any():
            ax.scatter(means[index][hit] + jitter[0][hit], overall[index][hit] + jitter[1][hit], s=9,
                       color="#c0392b", label="flagged by the audit", zorder=3)
    ax.set_xlabel("mean aspect rating (1-5)")
    ax.set_ylabel("critique overall score (1-10)")
    ax.legend(fontsize=7, loc="lower right")
    r = float(np.corrcoef(means[both], overall[both])[0, 1]) if both.sum() > 2 else float("nan")
    return f"<h2>Critique score vs aspect ratings</h2><p>{int(both.sum())} completions with both; Pearson r = {r:.2f}.</p>{png(plt, fig)}"


def length_bias_section(pairs: pa.Table) -> str:
    """Chosen vs rejected response length: DPO data that always prefers the longer answer
    teaches length, not quality."""
    if pairs.num_rows == 0:
        return ""
    chosen = np.array([len(m[-1]["content"]) for m in pairs.column("chosen").to_pylist()], dtype=float)
    rejected = np.array([len(m[-1]["content"]) for m in pairs.column("rejected").to_pylist()], dtype=float)
    longer = float(np.mean(chosen > rejected))
    plt, fig, ax = figure(4.6, 3.0)
    bins = np.linspace(0, max(chosen.max(), rejected.max()) + 1, 40)
    ax.hist(rejected, bins=bins, alpha=0.6, label="rejected", color="#c0392b")
    ax.hist(chosen, bins=bins, alpha=0.6, label="chosen", color="#27ae60")
    ax.set_xlabel("response length (characters)")
    ax.legend(fontsize=7)
    return (f"<h2>Length of chosen vs rejected</h2><p>Chosen is longer in {longer:.1%} of {pairs.num_rows} pairs; "
            f"median length chosen {np.median(chosen):.0f}, rejected {np.median(rejected):.0f} characters.</p>{png(plt, fig)}")
