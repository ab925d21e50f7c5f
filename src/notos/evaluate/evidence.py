"""What an evaluation folder says about how far its figures can be trusted, for `eval compare`:
the standard error and sample size behind each figure, and the set-up (judge, baseline,
questions) two runs must share before their difference means anything.

    errors = figure_errors(folder, summary)   # {"overall": (se, n), "per_category.math": (se, n), ...}
    setup = run_setup(folder, summary)        # {"judge": ..., "baseline": ..., "questions": ...}

MT-Bench standard errors come from the judgments file (one score per question and turn):
sample standard deviation / sqrt(n) over the scores behind each mean. A win rate carries its
own (AlpacaEval's, over n_total verdicts).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from notos.data.mt_bench import ANSWERS, FAILED, JUDGMENTS


def figure_errors(folder: Path, summary: dict) -> dict[str, tuple[float | None, int]]:
    """figure name (as flattened in the summary) -> (standard error or None, n)."""
    if summary.get("kind") == "winrate" or "win_rate" in summary:
        n = summary.get("n_total")
        return {"win_rate": (summary.get("standard_error"), n)} if isinstance(n, int) else {}
    if summary.get("kind") == "mt-bench":
        return _mt_bench_errors(Path(folder) / JUDGMENTS)
    return {}


def _mt_bench_errors(path: Path) -> dict:
    latest = {}
    for record in _jsonl(path):
        latest[(str(record.get("question_id")), record.get("turn"))] = record
    groups: dict[str, list[float]] = {}
    for (_, turn), record in latest.items():
        if record.get("score") in (None, FAILED):
            continue
        category, score = record.get("category") or "unknown", float(record["score"])
        for name in ("overall", f"turn_{turn}", f"per_category.{category}", f"per_category_turn.{category}.turn_{turn}"):
            groups.setdefault(name, []).append(score)
    return {name: (standard_error(values), len(values)) for name, values in groups.items()}


def standard_error(values: list[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def run_setup(folder: Path, summary: dict) -> dict:
    """The judge, the baseline and the questions a run was evaluated with (None: not recorded)."""
    folder = Path(folder)
    config = _json(folder / "config.json")
    return {"judge": summary.get("judge") or config.get("judge_id"),
            "baseline": summary.get("baseline"),
            "questions": _question_set(folder, config, summary)}


def _question_set(folder: Path, config: dict, summary: dict) -> str | None:
    """'N questions #digest' over the question ids (MT-Bench answers) or the instruction texts
    (win-rate annotations), so two runs on the same N but different questions differ too."""
    keys = [str(r.get("question_id")) for r in _jsonl(folder / ANSWERS)]
    if not keys:
        annotations = _json_list(folder / "annotations.json")
        keys = [str(a.get("instruction")) for a in annotations if isinstance(a, dict)]
    if keys:
        digest = hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:8]
        return f"{len(set(keys))} questions #{digest}"
    n = summary.get("n_questions") or config.get("n_instructions")
    return f"{n} questions" if isinstance(n, int) else None


def mismatches(a: dict, b: dict) -> list[str]:
    """What differs between two set-ups, one phrase each; an unrecorded side is not a mismatch."""
    out = []
    for key, what in (("judge", "judge"), ("baseline", "baseline"), ("questions", "question set")):
        if a.get(key) is not None and b.get(key) is not None and a[key] != b[key]:
            out.append(f"{what} {a[key]} vs {b[key]}")
    return out


def _jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _json(path: Path) -> dict:
    value = _json_any(path)
    return value if isinstance(value, dict) else {}


def _json_list(path: Path) -> list:
    value = _json_any(path)
    return value if isinstance(value, list) else []


def _json_any(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
