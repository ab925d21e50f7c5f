"""Pairwise win rate against a baseline, AlpacaEval style: plain (ties count half) and
length-controlled, from AlpacaEval annotations (notos.data.alpaca_eval). Pure functions.

    figures = win_rate(read_annotations("notus_vs_davinci.json"))
    # win_rate, standard_error, n_wins, ..., length_controlled_win_rate

Every figure is output_2's generator against output_1's (the baseline).

Length control (AlpacaEval 2's idea, own implementation): judges favour longer answers, so a
logistic model explains the win share y = p - 1 by an intercept, the length difference
(len(output_2) - len(output_1), squashed by tanh after dividing by its standard deviation) and,
where an instruction was judged several times, an effect per instruction. The length-controlled
win rate is the model's predicted win rate with the length difference set to zero.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from notos.data.alpaca_eval import check_annotations

LC_MIN_VERDICTS = 20
# L2 penalty on the summed log-loss. On the intercept and the length coefficient it is tiny:
# it only keeps separable data (every longer answer wins) finite; with n verdicts it moves the
# intercept by about 0.01 * intercept / (n p (1 - p)), far below the standard error. Per-instruction
# effects get a real one (1.0), acting like a random effect with unit variance on the logit scale,
# so two verdicts on one instruction cannot claim it is infinitely easy.
LC_PENALTY, LC_INSTRUCTION_PENALTY = 0.01, 1.0


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
