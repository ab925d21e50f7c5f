"""Two models' evaluation runs side by side (the Notus-vs-Zephyr table): every figure both
runs' summary.json files hold, with B minus A.

    result = compare_runs("runs/eval/zephyr", "runs/eval/notus")

A run is an evaluation output folder (`notos eval mt-bench`, `notos eval winrate`, ... : any
folder with a summary.json), or a folder of such folders (`eval/notus/mt-bench`,
`eval/notus/winrate`), whose figures are then named `mt-bench/overall`, `winrate/win_rate`.
Nested figures are flattened with dots (`per_category.math`); text, flags and lists are not
figures. What only one run has is listed, not compared.

A difference is only as good as the runs behind it: each row carries the standard error of the
difference (sqrt(se_A^2 + se_B^2), where the folders let it be computed) and each side's n, and
runs judged by different judges, against different baselines or on different questions are
refused (`allow_mismatch=True` compares them anyway, with the caveats in the result).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from notos.errors import NotosError
from notos.evaluate.evidence import figure_errors, mismatches, run_setup

# Figures drawn together on one scale, when both runs have them (matched on the last name part).
HEADLINES = {"MT-Bench (1-10)": ("overall", "turn_1", "turn_2"),
             "Win rate": ("win_rate", "length_controlled_win_rate")}


def flatten(data: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested dict, keyed by their dotted path."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = value
    return out


def _read_summary(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotosError(f"{path}: cannot read it as JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise NotosError(f"{path}: expected a JSON object of figures")
    return data


def load_run(folder) -> dict:
    """{"path", "label", "kinds", "figures"} for one evaluation folder (or a folder of them)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotosError(f"{folder}: no such folder")
    own = folder / "summary.json"
    parts = [("", own)] if own.exists() else [(f"{p.parent.name}/", p) for p in sorted(folder.glob("*/summary.json"))]
    if not parts:
        raise NotosError(f"{folder}: no summary.json (not an evaluation output folder)")
    figures, labels, kinds, errors, setups = {}, [], [], {}, {}
    for prefix, path in parts:
        summary = _read_summary(path)
        figures.update(flatten(summary, prefix))
        kinds.append(summary.get("kind") or prefix.rstrip("/") or "eval")
        errors.update({prefix + name: value for name, value in figure_errors(path.parent, summary).items()})
        setups[prefix] = run_setup(path.parent, summary)
        label = summary.get("model") or summary.get("generator") or summary.get("model_id")
        if isinstance(label, str) and label not in labels:
            labels.append(label)
    return {"path": str(folder), "label": " + ".join(labels) or folder.name, "kinds": kinds, "figures": figures,
            "errors": errors, "setups": setups}


def compare_runs(run_a, run_b, allow_mismatch: bool = False) -> dict:
    """The figures both runs have, in A's order, with `diff` = B - A, its standard error `se`
    and each side's n where known; compare.json's content. Runs evaluated differently (judge,
    baseline, questions) are an error unless `allow_mismatch`; then `caveats` lists how."""
    a, b = load_run(run_a), load_run(run_b)
    if a["label"] == b["label"]:  # the same model name twice says nothing: use the folders
        a["label"], b["label"] = a["path"], b["path"]
    shared = [name for name in a["figures"] if name in b["figures"]]
    if not shared:
        raise NotosError(f"{run_a} and {run_b} have no figure in common ({', '.join(a['kinds'])} vs {', '.join(b['kinds'])})")
    caveats = [f"{prefix}{m}" for prefix in a["setups"] if prefix in b["setups"]
               for m in mismatches(a["setups"][prefix], b["setups"][prefix])]
    if caveats and not allow_mismatch:
        raise NotosError(f"{run_a} and {run_b} were not evaluated alike ({'; '.join(caveats)}): their differences would "
                         "mix the models with the set-up. Evaluate both the same way, or pass --allow-mismatch to see them anyway")
    rows = [_row(name, a, b) for name in shared]
    return {"a": {k: a[k] for k in ("path", "label", "kinds")}, "b": {k: b[k] for k in ("path", "label", "kinds")},
            "caveats": caveats, "figures": rows,
            "only_in_a": [n for n in a["figures"] if n not in b["figures"]],
            "only_in_b": [n for n in b["figures"] if n not in a["figures"]]}


def _row(name: str, a: dict, b: dict) -> dict:
    """One figure of both runs: values, B - A, the difference's standard error (None where a
    side has none) and each side's n; `within_noise` when the difference is under 2 SE."""
    se_a, n_a = a["errors"].get(name, (None, None))
    se_b, n_b = b["errors"].get(name, (None, None))
    diff = b["figures"][name] - a["figures"][name]
    se = math.sqrt(se_a ** 2 + se_b ** 2) if se_a is not None and se_b is not None else None
    return {"figure": name, "a": a["figures"][name], "b": b["figures"][name], "diff": diff, "se": se,
            "n_a": n_a, "n_b": n_b, "within_noise": None if se is None else abs(diff) < 2 * se}


def _is_count(name: str) -> bool:
    return name.rsplit(".", 1)[-1].rsplit("/", 1)[-1].startswith("n_")


def plot_groups(result: dict) -> list[tuple[str, list[str]]]:
    """(title, figure names) for each plot: the headline figures, then every nested group of
    3 or more figures on one scale (MT-Bench's per-category means)."""
    names = [r["figure"] for r in result["figures"] if not _is_count(r["figure"])]
    groups = []
    for title, leaves in HEADLINES.items():
        chosen = [n for n in names if "." not in n and n.rsplit("/", 1)[-1] in leaves]
        if chosen:
            groups.append((title, chosen))
    parents: dict[str, list[str]] = {}
    for name in names:
        if "." in name:
            parents.setdefault(name.rsplit(".", 1)[0], []).append(name)
    groups += [(parent, members) for parent, members in parents.items() if len(members) >= 3]
    return groups


def grouped_bars(labels: list[str], series: dict[str, list], ylabel: str = "", ymax: float | None = None) -> str:
    """An inline PNG of bars grouped by label, one colour per series (None: no bar)."""
    from notos.report.html import png, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) + 1.5), 3.2), dpi=90)
    width = 0.8 / max(1, len(series))
    colours = ["#4a78a8", "#e08a3c", "#27ae60", "#c0392b"]
    for i, (name, values) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j, v in enumerate(values) if v is not None]
        ax.bar(xs, [v for v in values if v is not None], width, label=name, color=colours[i % len(colours)])
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([lab.rsplit(".", 1)[-1] for lab in labels], rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center", fontsize=8)
    if ymax is not None:
        ax.set_ylim(0, ymax)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=7)
    return png(plt, fig)


def write_comparison(result: dict, out_dir) -> Path:
    """compare.json and report.html in `out_dir`."""
    from html import escape

    from notos.report.html import table_html, write_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.json").write_text(json.dumps(result, indent=2))
    a, b = result["a"]["label"], result["b"]["label"]
    by_name = {r["figure"]: r for r in result["figures"]}
    sections = [(f"<p>A = <code>{escape(result['a']['path'])}</code> ({escape(a)}), "
                 f"B = <code>{escape(result['b']['path'])}</code> ({escape(b)}); B - A is B minus A, beside its "
                 "standard error and each side's n.</p>")]
    for title, names in plot_groups(result):
        ymax = 10 if title.startswith("MT-Bench") or title.endswith("per_category") else None
        sections += [f"<h2>{escape(title)}</h2>", grouped_bars(names, {a: [by_name[n]["a"] for n in names],
                                                                b: [by_name[n]["b"] for n in names]}, ymax=ymax)]
    if result.get("caveats"):
        sections.insert(0, "<p><strong>Not evaluated alike:</strong> " + escape("; ".join(result["caveats"]))
                        + ". The differences below mix the models with the set-up.</p>")
    rows = [{"figure": r["figure"], a: r["a"], b: r["b"], "B - A": r["diff"], "± SE": r.get("se"),
             "n (A / B)": _n_text(r)} for r in result["figures"]]
    sections += ["<h2>All shared figures</h2>", table_html(rows, ["figure", a, b, "B - A", "± SE", "n (A / B)"], limit=500)]
    for side, label in (("only_in_a", a), ("only_in_b", b)):
        if result[side]:
            sections.append(f"<p>Only in {escape(label)}: {escape(', '.join(result[side]))}</p>")
    return write_report(out_dir, f"{a} vs {b}", sections)


def print_comparison(result: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def fmt(value):
        return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"

    a, b = result["a"]["label"], result["b"]["label"]
    table = Table(title=f"A: {escape(a)}  vs  B: {escape(b)}", title_justify="left")
    for column in ("figure", "A", "B", "B - A", "± SE", "n A / B"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for r in result["figures"]:  # not coloured: higher is not always better (standard errors, failures)
        noise = "~" if r.get("within_noise") else ""
        se = "-" if r.get("se") is None else fmt(r["se"])
        table.add_row(escape(r["figure"]), fmt(r["a"]), fmt(r["b"]), noise + ("+" if r["diff"] > 0 else "") + fmt(r["diff"]),
                      se, _n_text(r))
    console = Console(soft_wrap=True)
    for caveat in result.get("caveats") or []:
        console.print(f"[yellow]  not evaluated alike: {escape(caveat)}; the difference mixes model and set-up[/yellow]")
    console.print(table)
    if any(r.get("within_noise") for r in result["figures"]):
        console.print("  ~ : the difference is under 2 standard errors (could be noise)", highlight=False)
    for side, label in (("only_in_a", a), ("only_in_b", b)):
        if result[side]:
            console.print(f"  only in {escape(label)}: {escape(', '.join(result[side]))}", highlight=False)


def _n_text(row: dict) -> str:
    if row.get("n_a") is None and row.get("n_b") is None:
        return "-"
    return f"{row.get('n_a') if row.get('n_a') is not None else '-'} / {row.get('n_b') if row.get('n_b') is not None else '-'}"
