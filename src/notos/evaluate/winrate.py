"""Pairwise win rate against a baseline, AlpacaEval style: plain (ties count half) and
length-controlled; from existing annotations or by judging pairs with any notos LLM.

    annotations = read_annotations("notus_vs_davinci.json")
    figures = win_rate(annotations)      # win_rate, standard_error, n_wins, ..., length_controlled_win_rate

An annotation is AlpacaEval's record: instruction, output_1 (the baseline), generator_1,
output_2 (the model), generator_2, preference: 1 = output_1 preferred, 2 = output_2 preferred,
a value in between = a tie (1.5) or a soft preference (p gives output_2 a win share of p - 1),
null = no verdict. Every figure is output_2's generator against output_1's.

Length control (AlpacaEval 2's idea, own implementation): judges favour longer answers, so a
logistic model explains the win share y = p - 1 by an intercept, the length difference
(len(output_2) - len(output_1), squashed by tanh after dividing by its standard deviation) and,
where an instruction was judged several times, an effect per instruction. The length-controlled
win rate is the model's predicted win rate with the length difference set to zero.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from notos.errors import NotosError
from notos.tasks import judges

REQUIRED = ("instruction", "output_1", "output_2", "preference")
PREFERENCE = {"1": 1.0, "2": 2.0, "tie": 1.5, None: None}  # judges.reconcile's winner -> AlpacaEval's scale
LC_MIN_VERDICTS = 20
# L2 penalty on the summed log-loss. On the intercept and the length coefficient it is tiny:
# it only keeps separable data (every longer answer wins) finite; with n verdicts it moves the
# intercept by about 0.01 * intercept / (n p (1 - p)), far below the standard error. Per-instruction
# effects get a real one (1.0), acting like a random effect with unit variance on the logit scale,
# so two verdicts on one instruction cannot claim it is infinitely easy.
LC_PENALTY, LC_INSTRUCTION_PENALTY = 0.01, 1.0
CHUNK = 32  # conversations per generate call: big enough to batch, small enough to move the bar


# -- reading ------------------------------------------------------------------------------

def read_annotations(path) -> list[dict]:
    """AlpacaEval annotations (a JSON list or JSONL) checked row by row; preference as float or None."""
    from notos.data.io import read_rows

    if not Path(path).is_file():
        raise NotosError(f"--annotations {path}: no such file")
    return check_annotations(read_rows(str(path)), str(path))


def check_annotations(rows: list[dict], source: str = "annotations") -> list[dict]:
    """Copies of the rows with `preference` normalised; a bad row is a one-line error naming
    the source, the row (1-based) and the field. One model and one baseline per set."""
    if not rows:
        raise NotosError(f"{source}: no annotations")
    out, names = [], {}
    for number, row in enumerate(rows, 1):
        for field in REQUIRED:
            if field not in row:
                raise NotosError(f"{source}: row {number}: missing field '{field}'")
        for field in ("output_1", "output_2"):
            if not isinstance(row[field], str):
                raise NotosError(f"{source}: row {number}: field '{field}' must be text, got {type(row[field]).__name__}")
        for field, default in (("generator_1", "baseline"), ("generator_2", "model")):
            name = str(row.get(field) or default)
            if names.setdefault(field, name) != name:
                raise NotosError(f"{source}: row {number}: field '{field}' is {name!r} but row 1 has {names[field]!r} (one model and one baseline per file)")
        out.append({**row, "preference": _preference(row["preference"], source, number)})
    return out


def _preference(value, source: str, number: int) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # pandas writes NaN for null
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 2:
        raise NotosError(f"{source}: row {number}: field 'preference' is {value!r} (expected a number from 1 to 2, or null for no verdict)")
    return float(value)


def read_outputs(path, option: str) -> list[dict]:
    """AlpacaEval's outputs file (instruction, output, generator)."""
    from notos.data.io import read_rows

    if not Path(path).is_file():
        raise NotosError(f"{option} {path}: no such file")
    rows = read_rows(str(path))
    for number, row in enumerate(rows, 1):
        for field in ("instruction", "output"):
            if not isinstance(row.get(field), str):
                problem = "missing field" if field not in row else "not text in field"
                raise NotosError(f"{option} {path}: row {number}: {problem} '{field}'")
    return rows


def read_instructions(path) -> list[str]:
    from notos.data.io import read_rows

    if not Path(path).is_file():
        raise NotosError(f"--instructions {path}: no such file")
    rows = read_rows(str(path))
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("instruction"), str) or not row["instruction"].strip():
            raise NotosError(f"--instructions {path}: row {number}: field 'instruction' is missing or empty")
    return [row["instruction"] for row in rows]


def match_outputs(instructions: list[str], rows: list[dict], source: str) -> list[str]:
    """The output for each instruction, matched by text (the k-th repeat of an instruction gets
    its k-th output), since outputs files of two models need not share an order."""
    by_text: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_text[row["instruction"]].append(row["output"])
    used: Counter[str] = Counter()
    out = []
    for text in instructions:
        if used[text] >= len(by_text.get(text, ())):
            raise NotosError(f"{source}: no output for the instruction {text[:60]!r}")
        out.append(by_text[text][used[text]])
        used[text] += 1
    return out


# -- the figures --------------------------------------------------------------------------------

def win_rate(annotations: list[dict], length_control: bool = True) -> dict:
    """Figures of output_2's generator against output_1's (percentages 0-100); summary.json's content."""
    rows = check_annotations(annotations)
    shares = [r["preference"] - 1 for r in rows if r["preference"] is not None]
    n = len(shares)
    mean = sum(shares) / n if n else None
    # AlpacaEval's standard error: sample standard deviation / sqrt(n) (pandas' sem).
    sd = math.sqrt(sum((s - mean) ** 2 for s in shares) / (n - 1)) if n > 1 else None
    figures = {
        "kind": "winrate",
        "model": str(rows[0].get("generator_2") or "model"),
        "baseline": str(rows[0].get("generator_1") or "baseline"),
        "win_rate": 100 * mean if n else None,
        "standard_error": 100 * sd / math.sqrt(n) if sd is not None else None,
        "n_wins": sum(1 for s in shares if s == 1),
        "n_wins_base": sum(1 for s in shares if s == 0),
        "n_draws": sum(1 for s in shares if 0 < s < 1),
        "n_total": n,
        "n_missing": len(rows) - n,
        # Over every row, judged or not: the length of what each generator wrote.
        "avg_length": sum(len(r["output_2"]) for r in rows) / len(rows),
        "avg_length_baseline": sum(len(r["output_1"]) for r in rows) / len(rows),
    }
    if length_control:
        figures.update(length_controlled(rows))
    return figures


def length_controlled(annotations: list[dict], coefficients: bool = False) -> dict:
    """{length_controlled_win_rate, length_coefficient, length_scale, lc_instruction_terms, lc_note};
    the rate is None with a note saying why when the data cannot support the fit. With
    `coefficients`, also lc_coefficients: {intercept, length, instructions: {text: effect}}."""
    rows = [r for r in annotations if r["preference"] is not None]
    out = {"length_controlled_win_rate": None, "length_coefficient": None, "length_scale": None,
           "lc_instruction_terms": 0, "lc_note": None}
    y = np.array([r["preference"] - 1 for r in rows], dtype=float)
    if len(rows) < LC_MIN_VERDICTS:
        return {**out, "lc_note": f"too few verdicts to fit (n < {LC_MIN_VERDICTS})"}
    if np.all(y == y[0]):
        return {**out, "lc_note": "all verdicts are the same: nothing to fit"}
    diff = np.array([len(r["output_2"]) - len(r["output_1"]) for r in rows], dtype=float)
    scale = float(np.std(diff, ddof=1))
    if scale == 0:
        return {**out, "lc_note": "the length difference is the same in every pair: length and quality cannot be told apart"}
    # Columns: intercept, length term, then one indicator per instruction judged at least twice.
    counts = Counter(r["instruction"] for r in rows)
    repeated = sorted(text for text, k in counts.items() if k >= 2)
    index = {text: j for j, text in enumerate(repeated)}
    x = np.zeros((len(rows), 2 + len(repeated)))
    x[:, 0], x[:, 1] = 1.0, np.tanh(diff / scale)
    for i, r in enumerate(rows):
        if r["instruction"] in index:
            x[i, 2 + index[r["instruction"]]] = 1.0
    penalty = np.array([LC_PENALTY, LC_PENALTY] + [LC_INSTRUCTION_PENALTY] * len(repeated))
    beta, converged = fit_logistic(x, y, penalty)
    if not converged:
        return {**out, "lc_note": "the logistic fit did not converge"}
    # Predicted win share of every judged pair with its length term zeroed, averaged (AlpacaEval
    # averages over its instructions); without instruction terms this is sigmoid(intercept).
    at_zero = x.copy()
    at_zero[:, 1] = 0.0
    out.update(length_controlled_win_rate=float(100 * np.mean(_sigmoid(at_zero @ beta))), length_coefficient=float(beta[1]),
               length_scale=scale, lc_instruction_terms=len(repeated))
    if coefficients:
        out["lc_coefficients"] = {"intercept": float(beta[0]), "length": float(beta[1]),
                                  "instructions": {text: float(beta[2 + j]) for text, j in index.items()}}
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def penalized_loss(x: np.ndarray, y: np.ndarray, beta: np.ndarray, penalty: np.ndarray) -> float:
    """Summed cross-entropy of soft targets y in [0, 1] plus (penalty / 2) * beta**2."""
    z = x @ beta
    return float(np.sum(y * np.logaddexp(0.0, -z) + (1 - y) * np.logaddexp(0.0, z)) + 0.5 * np.sum(penalty * beta**2))


def fit_logistic(x: np.ndarray, y: np.ndarray, penalty: np.ndarray, max_iter: int = 100, tol: float = 1e-9):
    """Newton's method (IRLS) for an L2-penalised logistic regression on soft targets; halves a
    step that would raise the loss. Converged: the Newton step is below `tol`. Returns (beta, converged)."""
    beta = np.zeros(x.shape[1])
    loss = penalized_loss(x, y, beta, penalty)
    for _ in range(max_iter):
        p = _sigmoid(x @ beta)
        gradient = x.T @ (p - y) + penalty * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)  # positive definite: the penalty
        step = np.linalg.solve(hessian, gradient)
        if not np.all(np.isfinite(step)):
            return beta, False
        if np.max(np.abs(step)) < tol:
            return beta, True
        scale = 1.0
        while scale > 1e-6:
            candidate = beta - scale * step
            new_loss = penalized_loss(x, y, candidate, penalty)
            if new_loss <= loss:
                break
            scale /= 2
        else:  # no step lowers the loss any more: at the optimum up to rounding, or stuck
            return beta, bool(np.max(np.abs(gradient)) < 1e-6 * len(y))
        beta, loss = candidate, new_loss
    return beta, False


# -- judging ----------------------------------------------------------------------------------

@contextmanager
def progress_bars(enabled: bool, totals: dict[str, int]):
    """One bar per phase; silent off a terminal or with enabled=False. Yields advance(name, n)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    bars = Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, disable=not (enabled and console.is_terminal))
    tasks = {name: bars.add_task(name, total=total) for name, total in totals.items() if total}
    with bars:
        yield lambda name, n: bars.update(tasks[name], advance=n) if name in tasks else None


async def _generate_chunked(llm, conversations: list, params, on_chunk=None) -> list:
    """llm.generate over CHUNK-sized calls, all in flight together, results in order."""
    async def call(chunk):
        results = await llm.generate(chunk, params)
        if on_chunk:
            on_chunk(len(chunk))
        return results

    parts = await asyncio.gather(*(call(conversations[i:i + CHUNK]) for i in range(0, len(conversations), CHUNK)))
    return [result for part in parts for result in part]


async def generate_outputs(instructions: list[str], spec, *, max_new_tokens: int = 512, temperature: float = 0.7,
                           name: str | None = None, on_chunk=None) -> list[dict]:
    """AlpacaEval outputs records (instruction, output, generator) answered by an LLM; a failed
    request leaves output "" and its reason in `error` (the pair then gets no verdict)."""
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    llm = await get_llm_async(spec)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    results = await _generate_chunked(llm, [[{"role": "user", "content": text}] for text in instructions], params, on_chunk)
    generator = name or llm.model_name
    return [{"instruction": text, "output": "" if r.error else r.texts[0], "generator": generator,
             **({"error": r.error} if r.error else {})} for text, r in zip(instructions, results)]


async def judge_win_rate(instructions: list[str], model_outputs: list[str | None], baseline_outputs: list[str | None],
                         judge_spec, both_orders: bool = True, *, model_name: str = "model", baseline_name: str = "baseline",
                         max_new_tokens: int = 512, on_chunk=None, judge_mode: str = "auto") -> tuple[list[dict], dict]:
    """Judge each (baseline, model) pair: once with the baseline as A, and with both_orders once
    more swapped, reconciled so a judge that follows position gives a tie. Returns the
    AlpacaEval annotations and their `win_rate` figures (plus judge diagnostics)."""
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    if not len(instructions) == len(model_outputs) == len(baseline_outputs):
        raise ValueError("instructions, model_outputs and baseline_outputs must have the same length")
    from notos.tasks.judge_calls import judge_for

    # judge_mode logprob: the likeliest of A/B/C from the judge's probabilities (small local judges).
    judge = judge_for(await get_llm_async(judge_spec), judge_spec, judge_mode, "pairwise")
    orders = 2 if both_orders else 1
    annotations = [{"instruction": q, "output_1": b or "", "generator_1": baseline_name, "output_2": m or "",
                    "generator_2": model_name, "annotator": judge.model_name, "preference": None, "consistent": None,
                    "judge_raw": [None] * orders, "judge_errors": [None] * orders}
                   for q, m, b in zip(instructions, model_outputs, baseline_outputs)]
    asks = []  # (pair index, order, messages); order 0 shows the baseline as A, as output_1
    for i, (q, m, b) in enumerate(zip(instructions, model_outputs, baseline_outputs)):
        if not m or not b:
            annotations[i]["judge_errors"] = ["no output to judge"] * orders
            continue
        asks += [(i, j, judges.pairwise_messages(q, *((b, m), (m, b))[j])) for j in range(orders)]
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0)
    results = await _generate_chunked(judge, [messages for _, _, messages in asks], params, on_chunk)
    verdicts: dict[int, list] = defaultdict(lambda: [None] * orders)
    failed_requests = unreadable = disagreed = 0
    for (i, j, _), result in zip(asks, results):
        if result.error:
            failed_requests += 1
            annotations[i]["judge_errors"][j] = f"request failed: {result.error}"
            continue
        parsed = judges.parse_pairwise(result.texts[0])
        unreadable += parsed["winner"] is None
        verdicts[i][j] = parsed
        annotations[i]["judge_raw"][j], annotations[i]["judge_errors"][j] = result.texts[0], parsed["error"]
    for i, found in verdicts.items():
        if both_orders:
            joined = judges.reconcile(*found)
            annotations[i].update(preference=PREFERENCE[joined["winner"]], consistent=joined["consistent"])
            # Both orders read, and they disagree: the judge followed position, so it counts as a tie.
            disagreed += all(v and v["winner"] for v in found) and not joined["consistent"]
        else:
            winner = {"A": "1", "B": "2", "tie": "tie", None: None}[found[0]["winner"] if found[0] else None]
            annotations[i]["preference"] = PREFERENCE[winner]
    figures = win_rate(annotations)
    figures.update(judge=judge.model_name, both_orders=both_orders, n_judge_requests_failed=failed_requests,
                   n_verdicts_unreadable=unreadable, n_inconsistent=disagreed)
    return annotations, figures


# -- the output folder ---------------------------------------------------------------------------

def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file


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


# -- a judged run, end to end --------------------------------------------------------------------

DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet", ".csv")


def _is_file_option(value: str, option: str) -> bool:
    """`--baseline SPEC|FILE`: an existing file is outputs; anything else must read as an LLM spec."""
    from notos.llms.spec import check_spec

    if Path(value).is_file():
        return True
    if Path(value).suffix.lower() in DATA_SUFFIXES:
        raise NotosError(f"{option} {value}: no such file")
    try:
        check_spec(value)
    except NotosError as exc:
        raise NotosError(f"{option} {value}: not a file, and {str(exc).removeprefix('llm: ')}") from None
    return False


def run_judged(out_dir, *, baseline: str, judge: str, instructions=None, model: str | None = None, model_outputs=None,
               limit: int | None = None, both_orders: bool = True, max_new_tokens: int = 512, judge_max_new_tokens: int = 512,
               model_name: str | None = None, baseline_name: str | None = None, progress: bool = True,
               judge_mode: str = "auto") -> dict:
    """Outputs from files or generated, judged pairwise, figures written to out_dir (annotations.json,
    summary.json, config.json, report.html, and model_outputs.json / baseline_outputs.json when
    generated). Returns summary.json's content."""
    from notos.llms.spec import check_spec, fingerprint_view
    from notos.tasks.judge_calls import check_judge_mode

    check_judge_mode(judge_mode, "--judge-mode")
    if (model is None) == (model_outputs is None):
        raise NotosError("give the model as --model SPEC (answers generated) or --model-outputs FILE, one of them")
    model_rows = read_outputs(model_outputs, "--model-outputs") if model_outputs is not None else None
    if model is not None:
        try:
            check_spec(model)
        except NotosError as exc:
            raise NotosError(f"--model {model}: {str(exc).removeprefix('llm: ')}") from None
    baseline_rows = read_outputs(baseline, "--baseline") if _is_file_option(baseline, "--baseline") else None
    try:
        check_spec(judge)
    except NotosError as exc:
        raise NotosError(f"--judge {judge}: {str(exc).removeprefix('llm: ')}") from None
    if instructions is not None:
        texts = read_instructions(instructions)
    elif model_rows is not None or baseline_rows is not None:
        texts = [r["instruction"] for r in (model_rows if model_rows is not None else baseline_rows)]
    else:
        raise NotosError("--instructions FILE is needed when both the model and the baseline are LLM specs")
    texts = texts[:limit] if limit else texts
    ours = match_outputs(texts, model_rows, f"--model-outputs {model_outputs}") if model_rows is not None else None
    theirs = match_outputs(texts, baseline_rows, f"--baseline {baseline}") if baseline_rows is not None else None
    model_name = model_name or (str(model_rows[0].get("generator") or "") if model_rows else "") or None
    baseline_name = baseline_name or (str(baseline_rows[0].get("generator") or "") if baseline_rows else "") or None
    config = {"kind": "winrate", "instructions": str(instructions) if instructions else None,
              "model": {"file": str(model_outputs)} if model_rows is not None else fingerprint_view(model),
              "baseline": {"file": str(baseline)} if baseline_rows is not None else fingerprint_view(baseline),
              "judge": fingerprint_view(judge), "both_orders": both_orders, "limit": limit, "n_instructions": len(texts),
              "max_new_tokens": max_new_tokens, "judge_max_new_tokens": judge_max_new_tokens, "judge_mode": judge_mode}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    annotations, summary, generated = asyncio.run(_judged(
        texts, model, ours, model_name, baseline, theirs, baseline_name, judge, both_orders,
        max_new_tokens, judge_max_new_tokens, progress, judge_mode))
    for name, records in generated.items():
        write_json(out_dir / name, records)
    write_winrate_folder(out_dir, summary, config, annotations)
    return summary


async def _judged(texts, model, ours, model_name, baseline, theirs, baseline_name, judge, both_orders,
                  max_new_tokens, judge_max_new_tokens, progress, judge_mode="auto"):
    from notos.llms.spec import close_all

    n = len(texts)
    generated = {}
    totals = {"model outputs": n if ours is None else 0, "baseline outputs": n if theirs is None else 0,
              "judgments": n * (2 if both_orders else 1)}
    try:
        with progress_bars(progress, totals) as advance:
            if ours is None:
                records = await generate_outputs(texts, model, max_new_tokens=max_new_tokens, name=model_name,
                                                 on_chunk=lambda k: advance("model outputs", k))
                generated["model_outputs.json"], ours = records, [r["output"] for r in records]
                model_name = records[0]["generator"] if records else model_name
            if theirs is None:
                records = await generate_outputs(texts, baseline, max_new_tokens=max_new_tokens, name=baseline_name,
                                                 on_chunk=lambda k: advance("baseline outputs", k))
                generated["baseline_outputs.json"], theirs = records, [r["output"] for r in records]
                baseline_name = records[0]["generator"] if records else baseline_name
            annotations, summary = await judge_win_rate(
                texts, ours, theirs, judge, both_orders, model_name=model_name or "model",
                baseline_name=baseline_name or "baseline", max_new_tokens=judge_max_new_tokens,
                on_chunk=lambda k: advance("judgments", k), judge_mode=judge_mode)
    finally:
        await close_all()
    return annotations, summary, generated
