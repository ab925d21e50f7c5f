"""AlpacaEval files: outputs (instruction, output, generator) and pairwise annotations.

An annotation is AlpacaEval's record: instruction, output_1 (the baseline), generator_1,
output_2 (the model), generator_2, preference: 1 = output_1 preferred, 2 = output_2 preferred,
a value in between = a tie (1.5) or a soft preference (p gives output_2 a win share of p - 1),
null = no verdict.

    annotations = read_annotations("notus_vs_davinci.json")   # JSON list or JSONL, checked row by row
    baseline = read_outputs("davinci_outputs.json", "--baseline")
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from notos.data.io import read_option_file
from notos.errors import NotosError

REQUIRED = ("instruction", "output_1", "output_2", "preference")


def read_annotations(path) -> list[dict]:
    """AlpacaEval annotations (a JSON list or JSONL) checked row by row; preference as float or None."""
    return check_annotations(read_option_file(path, "--annotations"), str(path))


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
    rows = read_option_file(path, option)
    for number, row in enumerate(rows, 1):
        for field in ("instruction", "output"):
            if not isinstance(row.get(field), str):
                problem = "missing field" if field not in row else "not text in field"
                raise NotosError(f"{option} {path}: row {number}: {problem} '{field}'")
    return rows


def read_instructions(path) -> list[str]:
    """The `instruction` of every row (other fields are ignored)."""
    rows = read_option_file(path, "--instructions")
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

