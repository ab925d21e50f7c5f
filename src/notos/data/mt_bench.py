"""MT-Bench files, in FastChat's layout (fastchat/llm_judge).

    questions = load_questions("question.jsonl")              # question_id, category, turns (2 user turns)
    references = load_references("reference_answer/gpt-4.jsonl")  # question_id -> choices[0].turns

An evaluation folder holds `model_answer.jsonl` (question_id, answer_id, model_id,
choices[0].turns, tstamp) and `model_judgment.jsonl` (question_id, model, judge [name, prompt],
user_prompt, judgment, score, turn, tstamp, category, parse_error); score -1 is FastChat's mark
for a verdict that could not be read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from notos.data.io import read_option_file
from notos.errors import NotosError

ANSWERS, JUDGMENTS = "model_answer.jsonl", "model_judgment.jsonl"
FAILED = -1  # FastChat's score for a verdict that could not be read


@dataclass(frozen=True)
class Question:
    question_id: int | str
    category: str
    turns: tuple[str, str]
    reference: tuple[str, ...] | None = None  # the question's own `reference` field, if any

    @property
    def key(self) -> str:  # ids compare as text: one file may write 81, another "81"
        return str(self.question_id)


def _question_id(row: dict, where: str):
    qid = row.get("question_id")
    if isinstance(qid, bool) or not isinstance(qid, (int, str)) or qid == "":
        raise NotosError(f"{where}: 'question_id' must be an integer or a string, got {qid!r}")
    return qid


def load_questions(path) -> list[Question]:
    """FastChat's question.jsonl, checked row by row (a bad row is a one-line error naming it)."""
    questions, seen = [], set()
    for number, row in enumerate(read_option_file(path, "--questions"), 1):
        where = f"{path}: question {number}"
        qid = _question_id(row, where)
        turns, category = row.get("turns"), row.get("category")
        if not (isinstance(turns, list) and len(turns) == 2 and all(isinstance(t, str) and t.strip() for t in turns)):
            raise NotosError(f"{where} (id {qid}): 'turns' must be a list of 2 non-empty strings (MT-Bench's two user turns)")
        if not isinstance(category, str) or not category:
            raise NotosError(f"{where} (id {qid}): 'category' must be a non-empty string")
        if str(qid) in seen:
            raise NotosError(f"{where}: question_id {qid} appears twice")
        seen.add(str(qid))
        reference = row.get("reference")
        reference = tuple(reference) if isinstance(reference, list) and all(isinstance(r, str) for r in reference) else None
        questions.append(Question(qid, category, (turns[0], turns[1]), reference))
    return questions


def load_references(path) -> dict[str, tuple[str, ...]]:
    """question_id (as text) -> the reference turns, from FastChat's reference_answer file."""
    references = {}
    for number, row in enumerate(read_option_file(path, "--references"), 1):
        where = f"{path}: answer {number}"
        qid = _question_id(row, where)
        choices = row.get("choices")
        turns = choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if not (isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns)):
            raise NotosError(f"{where} (id {qid}): expected choices[0].turns, a list of strings")
        references[str(qid)] = tuple(turns)
    return references


def answer_record(question: Question, model_id: str, turns: list[str], answer_id: str, tstamp: float) -> dict:
    return {"question_id": question.question_id, "answer_id": answer_id, "model_id": model_id,
            "choices": [{"index": 0, "turns": list(turns)}], "tstamp": tstamp}


def judgment_record(question: Question, model_id: str, judge: tuple[str, str], turn: int, user_prompt: str,
                    judgment: str, score: float | None, parse_error: str | None, tstamp: float) -> dict:
    """`judge`: (the judge's name, the prompt's name); a score of None is written as FAILED (-1)."""
    return {"question_id": question.question_id, "model": model_id, "judge": list(judge), "user_prompt": user_prompt,
            "judgment": judgment, "score": FAILED if score is None else score, "turn": turn, "tstamp": tstamp,
            "category": question.category, "parse_error": parse_error}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """One record a line, atomically (a reader never sees half a file)."""
    from notos.data.atomic import atomic_write_bytes

    return atomic_write_bytes(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))
