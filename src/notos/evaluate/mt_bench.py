"""MT-Bench, as FastChat's llm_judge runs it: a model answers 80 two-turn questions, a judge
grades each turn 1-10, and the means per turn, per category and overall are the result.

    summary = run_mt_bench("embedded", "openai:gpt-4o", "question.jsonl", "runs/mt-bench",
                           references="reference_answer_gpt-4.jsonl")

It is a pipeline on the engine, one row per question:

    questions >> answer_turn_1 >> first_exchange >> answer_turn_2 >> stamp_answer >> add_references
        >> judge_turn_1 >> verdict_turn_1
        >> judge_turn_2 >> verdict_turn_2

(text_generation at FastChat's temperature per category, turn 2 with the first exchange as
context; llm_judge per turn, greedy, with the reference answer for math, reasoning and coding,
and turn 2 graded in context). The run lives in OUT/run, so rerunning the same command asks
nothing again, retries only the requests that failed, and a changed option reruns only the
steps it touches. The FastChat files (model_answer.jsonl, model_judgment.jsonl; score -1: the
verdict could not be read, left out of every mean), config.json, summary.json and report.html
are written from the run's result at the end.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

from notos.data.atomic import write_json
from notos.data.mt_bench import (
    ANSWERS,
    FAILED,
    JUDGMENTS,
    Question,
    answer_record,
    judgment_record,
    load_questions,
    load_references,
    write_jsonl,
)
from notos.errors import NotosError
from notos.pipeline import Pipeline, from_rows, step

# FastChat's sampling temperature per category (fastchat/llm_judge/common.py); 0.7 otherwise.
TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
               "reasoning": 0.0, "stem": 0.1, "humanities": 0.1}
DEFAULT_TEMPERATURE = 0.7
NEED_REFERENCE = ("math", "reasoning", "coding")
CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
RUN = "run"  # the run store, inside the output folder
BATCH_SIZE = 32  # questions per batch: big enough to batch, small enough to commit often
# Defaults of the settings a rerun on the same folder keeps when they are not given again
# (FastChat's token budgets); a setting given anew reruns the steps it touches.
SETTINGS = {"max_new_tokens": 1024, "judge_max_new_tokens": 2048, "judge_mode": "auto"}

log = logging.getLogger("notos")


def select_questions(questions: list[Question], question_ids: str | None = None, limit: int | None = None) -> list[Question]:
    if question_ids:
        wanted = [part.strip() for part in str(question_ids).split(",") if part.strip()]
        known = {q.key for q in questions}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise NotosError(f"--question-ids: no question with id {', '.join(unknown)} in the questions file")
        questions = [q for q in questions if q.key in set(wanted)]
    return spread_over_categories(questions, limit) if limit else questions


def spread_over_categories(questions: list[Question], limit: int) -> list[Question]:
    """`limit` questions taken in turn from each category (the first writing, roleplay, ...
    question, then the second of each), in file order: FastChat's file is sorted by category,
    so its first 8 would all be writing. Deterministic, so a rerun picks the same ones."""
    by_category: dict[str, list[int]] = {}
    for position, question in enumerate(questions):
        by_category.setdefault(question.category or "", []).append(position)
    picked: list[int] = []
    depth = 0
    while len(picked) < min(limit, len(questions)):
        for positions in by_category.values():
            if depth < len(positions) and len(picked) < limit:
                picked.append(positions[depth])
        depth += 1
    return [questions[i] for i in sorted(picked)]


def reference_for(question: Question, references: dict, turn: int) -> str | None:
    """The reference shown for `turn` (1 or 2): only in math, reasoning and coding, as FastChat does;
    from the references file first, else the question's own `reference` field."""
    if question.category not in NEED_REFERENCE:
        return None
    turns = references.get(question.key) or question.reference or ()
    text = turns[turn - 1] if len(turns) >= turn else None
    return text if text else None


# -- the pipeline ------------------------------------------------------------------------------

@step(inputs={"turn_1": "str", "answer_1": "any"}, outputs=["context"])
def first_exchange(row):
    """Turn 2 is asked, and graded, after the first exchange."""
    return {"context": [[row["turn_1"], row["answer_1"]]]}


@step(outputs=["answer_id", "answered_at"])
def stamp_answer(row):
    """FastChat's answer_id and tstamp, committed with the run so a rerun keeps them."""
    return {"answer_id": uuid.uuid4().hex[:22], "answered_at": time.time()}


@step(outputs=["reference_1", "reference_2"])
def add_references(row, references):
    """references: question_id -> [turn 1's, turn 2's] (None: judged without one). A step of its
    own, so another references file re-judges without re-answering."""
    found = references.get(row["question_id"]) or [None, None]
    return {"reference_1": found[0], "reference_2": found[1]}


@step(outputs=["judged_at"])
def stamp_judgment(row):
    return {"judged_at": time.time()}


def mt_bench_pipeline(questions: list[Question], references: dict, model, judge, *, max_new_tokens: int = 1024,
                      judge_max_new_tokens: int = 2048, judge_mode: str = "auto") -> Pipeline:
    from notos.tasks import llm_judge, text_generation

    rows = [{"question_id": q.key, "category": q.category, "turn_1": q.turns[0], "turn_2": q.turns[1],
             "temperature": float(TEMPERATURE.get(q.category, DEFAULT_TEMPERATURE))} for q in questions]
    refs = {q.key: [reference_for(q, references, 1), reference_for(q, references, 2)] for q in questions
            if q.category in NEED_REFERENCE}
    answer = dict(temperature_column="temperature", max_new_tokens=max_new_tokens, allow_empty=True)
    answered = (from_rows(rows, id_column="question_id", name="questions")
                >> text_generation(model, instruction_column="turn_1", output_column="answer_1", name="answer_turn_1", **answer)
                >> first_exchange()
                >> text_generation(model, instruction_column="turn_2", context_column="context", output_column="answer_2",
                                   name="answer_turn_2", **answer)
                >> stamp_answer()
                >> add_references(references=refs))
    for turn in (1, 2):
        answered >> llm_judge(judge, instruction_column=f"turn_{turn}", response_column=f"answer_{turn}",
                              reference_column=f"reference_{turn}", context_column="context" if turn == 2 else None,
                              max_new_tokens=judge_max_new_tokens, mode=judge_mode,
                              name=f"judge_turn_{turn}") >> stamp_judgment(name=f"verdict_turn_{turn}")
    return Pipeline(answered, name="mt-bench", batch_size=BATCH_SIZE)


# -- the whole run -----------------------------------------------------------------------------

def run_mt_bench(model, judge, questions, out_dir, *, references=None, question_ids: str | None = None,
                 limit: int | None = None, max_new_tokens: int | None = None, judge_max_new_tokens: int | None = None,
                 model_name: str | None = None, progress: bool = True, judge_mode: str | None = None) -> dict:
    """Answer, judge and summarise; returns summary.json's content. Rerun on the same folder to resume
    (settings not given again are the folder's: see SETTINGS).
    judge_mode: text (the judge writes [[N]]), logprob (the expectation over 1..10 from its
    probabilities: small local judges) or auto (logprob for local judges, text for servers)."""
    from notos.evaluate.local_models import local_spec
    from notos.llms.spec import check_spec, fingerprint_view
    from notos.pipeline import run
    from notos.tasks.judge_calls import check_judge_mode

    model, judge = local_spec(model, "--model"), local_spec(judge, "--judge")
    out_dir = Path(out_dir)
    old = _old_config(out_dir)
    given = {"max_new_tokens": max_new_tokens, "judge_max_new_tokens": judge_max_new_tokens, "judge_mode": judge_mode}
    settings = {key: value if value is not None else old.get(key, SETTINGS[key]) for key, value in given.items()}
    check_judge_mode(settings["judge_mode"], "--judge-mode")
    all_questions = load_questions(questions)
    chosen = select_questions(all_questions, question_ids, limit)
    refs = load_references(references) if references else {}
    check_spec(model)
    check_spec(judge)
    config = {"kind": "mt-bench", "model": fingerprint_view(model), "judge": fingerprint_view(judge),
              "model_name": model_name, "questions": str(questions), "references": str(references) if references else None,
              "question_ids": question_ids, "limit": limit, "max_new_tokens": settings["max_new_tokens"],
              "judge_max_new_tokens": settings["judge_max_new_tokens"], "temperature": TEMPERATURE,
              "judge_mode": settings["judge_mode"]}
    _check_resume(out_dir, old, config)
    pipeline = mt_bench_pipeline(chosen, refs, model, judge, **settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_name = config["model_name"] = model_name or old.get("model_name")
    config["model_id"], config["judge_id"] = old.get("model_id"), old.get("judge_id")
    write_json(out_dir / "config.json", config)
    missing_refs = [q.key for q in chosen if q.category in NEED_REFERENCE and reference_for(q, refs, 1) is None]
    if missing_refs:
        log.info("MT-Bench: no reference answer for question %s: judged without one (pass --references)", ", ".join(missing_refs))
    # retry_failed: a rerun asks again what failed (an outage, a 429) and keeps everything else.
    run(pipeline, out_dir / RUN, progress=progress, retry_failed=True)
    answers, judgments, (model_id, judge_id) = records_of_run(out_dir / RUN, chosen, model_name)
    config["model_id"] = model_id or config["model_id"]
    config["judge_id"] = judge_id or config["judge_id"]
    write_json(out_dir / "config.json", config)
    write_jsonl(out_dir / ANSWERS, answers)
    write_jsonl(out_dir / JUDGMENTS, judgments)
    summary = summarize(answers, judgments, all_questions, chosen)
    summary.update(model=config["model_id"], judge=config["judge_id"])
    write_json(out_dir / "summary.json", summary)
    from notos.evaluate.reports import write_mt_bench_report

    write_mt_bench_report(out_dir, summary, all_questions, judgments)
    return summary


def _old_config(out_dir: Path) -> dict:
    path = out_dir / "config.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise NotosError(f"{path}: not valid JSON; delete it or use another --out") from None


def _check_resume(out_dir: Path, old: dict, config: dict) -> None:
    """An existing folder must hold the same model and judge: a resume never mixes two."""
    for key, option in (("model", "--model"), ("judge", "--judge"), ("model_name", "--model-name")):
        if old.get(key) is not None and config[key] is not None and old[key] != config[key]:
            was, now = (json.dumps(v) if isinstance(v, dict) else v for v in (old[key], config[key]))
            raise NotosError(f"{out_dir} holds an MT-Bench run with {option} {was}, not {now}; use another --out")


def records_of_run(run_dir: Path, chosen: list[Question], model_name: str | None):
    """FastChat's answer and judgment records from the run's two leaves, in question order, and
    (model_id, judge_id). Failed requests give no record; they are logged in one line each kind."""
    from notos.pipeline import load_run
    from notos.tasks import judges

    leaves = load_run(run_dir)
    verdicts = {turn: {r["row_id"]: r for r in leaves[f"verdict_turn_{turn}"].to_list()} for turn in (1, 2)}
    answers, judgments, failed = [], [], {"answers": [], "verdicts": []}
    model_id = model_name or next((r["model_name"] for r in verdicts[1].values() if r.get("model_name")), None)
    judge_id = next((r["judge_model"] for v in verdicts.values() for r in v.values() if r.get("judge_model")), None)
    for q in chosen:
        rows = {turn: verdicts[turn].get(q.key) for turn in (1, 2)}
        if rows[1] is None or rows[1].get("answer_id") is None:
            failed["answers"].append(f"question {q.key}: {(rows[1] or {}).get('_error') or 'not answered'}")
            continue
        first = rows[1]
        answers.append(answer_record(q, model_id or "model", [first["answer_1"], first["answer_2"]], first["answer_id"],
                                     first["answered_at"]))
        for turn, row in rows.items():
            if row is None or row.get("_error"):
                failed["verdicts"].append(f"question {q.key}, turn {turn}: {(row or {}).get('_error') or 'not judged'}")
                continue
            reference = row.get(f"reference_{turn}") or None
            context = row["context"] if turn == 2 else None
            messages = judges.single_messages(row[f"turn_{turn}"], row[f"answer_{turn}"], reference=reference,
                                              turn_context=context)
            prompt = "notos-single" + ("-ref" if reference is not None else "") + ("-multi-turn" if turn == 2 else "")
            judgments.append(judgment_record(q, model_id or "model", (row["judge_model"], prompt), turn,
                                             messages[-1]["content"], row["judge_raw"], row["judge_score"],
                                             row["judge_error"], row["judged_at"]))
    for what, failures in failed.items():
        if failures:  # one line, not one per question: an outage fails them all the same way
            log.info("MT-Bench: %d %s failed (first: %s); rerun the same command to retry them", len(failures), what, failures[0])
    return answers, judgments, (model_id, judge_id)


# -- the figures -------------------------------------------------------------------------------

def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def category_order(categories) -> list[str]:
    return [c for c in CATEGORIES if c in categories] + sorted(set(categories) - set(CATEGORIES))


def summarize(answers: list[dict], judgments: list[dict], questions: list[Question], chosen: list[Question] | None = None) -> dict:
    """Means per turn, per category (both turns) and overall, over the verdicts that could be
    read (score -1 excluded), with how many could not."""
    category = {q.key: q.category for q in questions}
    latest = {}
    for record in judgments:  # one verdict per (question, turn): the last one written
        latest[(str(record["question_id"]), record["turn"])] = record
    scored: dict[tuple[str, int], list[float]] = {}
    failed, cats = 0, set()
    for (key, turn), record in latest.items():
        cat = category.get(key) or record.get("category") or "unknown"
        cats.add(cat)
        if record["score"] == FAILED:
            failed += 1
            continue
        scored.setdefault((cat, turn), []).append(float(record["score"]))
    cats = category_order(cats)
    answered = {str(r["question_id"]) for r in answers}
    return {
        "kind": "mt-bench",
        "overall": _mean([s for values in scored.values() for s in values]),
        "turn_1": _mean([s for (_, t), values in scored.items() if t == 1 for s in values]),
        "turn_2": _mean([s for (_, t), values in scored.items() if t == 2 for s in values]),
        "per_category": {c: _mean(scored.get((c, 1), []) + scored.get((c, 2), [])) for c in cats},
        "per_category_turn": {c: {"turn_1": _mean(scored.get((c, 1), [])), "turn_2": _mean(scored.get((c, 2), []))} for c in cats},
        "n_questions": len(answered),
        "n_judged": len(latest),
        "n_scored": len(latest) - failed,
        "n_failed_to_parse": failed,
        "n_unjudged": sum(1 for key in answered for t in (1, 2) if (key, t) not in latest),
        "n_unanswered": sum(1 for q in chosen or [] if q.key not in answered),
    }
