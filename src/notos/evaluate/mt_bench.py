"""MT-Bench, as FastChat's llm_judge runs it: a model answers 80 two-turn questions, a judge
grades each turn 1-10, and the means per turn, per category and overall are the result.

    summary = run_mt_bench("embedded", "openai:gpt-4o", "question.jsonl", "runs/mt-bench",
                           references="reference_answer_gpt-4.jsonl")

The questions are FastChat's `question.jsonl` (question_id, category, turns: 2 user turns); it is
not shipped with notos. References (question_id, choices[0].turns) are shown to the judge for
math, reasoning and coding only; without a reference file a question's own `reference` field is
used where it has one. The output folder holds, in FastChat's layout, `model_answer.jsonl` and
`model_judgment.jsonl` (score -1: the verdict could not be read; left out of every mean), plus
`config.json`, `summary.json` and `report.html`. Answers and judgments are appended as they
come, so rerunning on the same folder does only what is missing (and retries failed requests).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from notos.errors import NotosError
from notos.tasks import judges

# FastChat's sampling temperature per category (fastchat/llm_judge/common.py); 0.7 otherwise.
TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
               "reasoning": 0.0, "stem": 0.1, "humanities": 0.1}
DEFAULT_TEMPERATURE = 0.7
NEED_REFERENCE = ("math", "reasoning", "coding")
CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
ANSWERS, JUDGMENTS = "model_answer.jsonl", "model_judgment.jsonl"
FAILED = -1  # FastChat's score for a verdict that could not be read
CHUNK = 32  # conversations per generate call: big enough to batch, small enough to move the bar

log = logging.getLogger("notos")


@dataclass(frozen=True)
class Question:
    question_id: int | str
    category: str
    turns: tuple[str, str]
    reference: tuple[str, ...] | None = None  # the question's own `reference` field, if any

    @property
    def key(self) -> str:  # ids compare as text: one file may write 81, another "81"
        return str(self.question_id)


# -- reading the inputs ------------------------------------------------------------------

def _rows(path, option: str) -> list[dict]:
    from notos.data.io import read_rows

    if not Path(path).is_file():
        raise NotosError(f"{option} {path}: no such file")
    return read_rows(str(path))


def _question_id(row: dict, where: str):
    qid = row.get("question_id")
    if isinstance(qid, bool) or not isinstance(qid, (int, str)) or qid == "":
        raise NotosError(f"{where}: 'question_id' must be an integer or a string, got {qid!r}")
    return qid


def load_questions(path) -> list[Question]:
    questions, seen = [], set()
    for number, row in enumerate(_rows(path, "--questions"), 1):
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
    for number, row in enumerate(_rows(path, "--references"), 1):
        where = f"{path}: answer {number}"
        qid = _question_id(row, where)
        choices = row.get("choices")
        turns = choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if not (isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns)):
            raise NotosError(f"{where} (id {qid}): expected choices[0].turns, a list of strings")
        references[str(qid)] = tuple(turns)
    return references


def select_questions(questions: list[Question], question_ids: str | None = None, limit: int | None = None) -> list[Question]:
    if question_ids:
        wanted = [part.strip() for part in str(question_ids).split(",") if part.strip()]
        known = {q.key for q in questions}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise NotosError(f"--question-ids: no question with id {', '.join(unknown)} in the questions file")
        questions = [q for q in questions if q.key in set(wanted)]
    return questions[:limit] if limit else questions


def reference_for(question: Question, references: dict, turn: int) -> str | None:
    """The reference shown for `turn` (1 or 2): only in math, reasoning and coding, as FastChat does."""
    if question.category not in NEED_REFERENCE:
        return None
    turns = references.get(question.key) or question.reference or ()
    text = turns[turn - 1] if len(turns) >= turn else None
    return text if text else None


# -- the records, FastChat's layout --------------------------------------------------------

def answer_record(question: Question, model_id: str, turns: list[str]) -> dict:
    return {"question_id": question.question_id, "answer_id": uuid.uuid4().hex[:22], "model_id": model_id,
            "choices": [{"index": 0, "turns": list(turns)}], "tstamp": time.time()}


def judge_messages(question: Question, answers: list[str], turn: int, references: dict) -> tuple[list[dict], str]:
    """The judge's messages for one turn, and the prompt's name (recorded with the verdict)."""
    reference = reference_for(question, references, turn)
    if turn == 1:
        messages = judges.single_messages(question.turns[0], answers[0], reference=reference)
    else:  # turn 2 is graded in context: the judge sees the first exchange
        messages = judges.single_messages(question.turns[1], answers[1], reference=reference,
                                          turn_context=[(question.turns[0], answers[0])])
    name = "notos-single" + ("-ref" if reference is not None else "") + ("-multi-turn" if turn == 2 else "")
    return messages, name


def judgment_record(question: Question, model_id: str, judge_id: str, prompt_name: str, turn: int,
                    messages: list[dict], text: str) -> dict:
    parsed = judges.parse_single(text)
    return {"question_id": question.question_id, "model": model_id, "judge": [judge_id, prompt_name],
            "user_prompt": messages[-1]["content"], "judgment": text,
            "score": FAILED if parsed["score"] is None else parsed["score"], "turn": turn,
            "tstamp": time.time(), "category": question.category, "parse_error": parsed["error"]}


# -- the folder ------------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    """Records written so far. A last line cut short by a crash is dropped (and redone)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n"):
                path.write_text("".join(lines[:-1]), encoding="utf-8")
                break
            raise NotosError(f"{path}: line {number} is not valid JSON; fix or delete the file to start over") from None
    return records


def _append(path: Path, records: list[dict]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        fh.flush()


def _check_resume(out_dir: Path, config: dict) -> dict:
    """An existing folder must hold the same model and judge: a resume never mixes two."""
    path = out_dir / "config.json"
    if not path.exists():
        return {}
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise NotosError(f"{path}: not valid JSON; delete it or use another --out") from None
    for key, option in (("model", "--model"), ("judge", "--judge"), ("model_name", "--model-name")):
        if old.get(key) is not None and config[key] is not None and old[key] != config[key]:
            was, now = (json.dumps(v) if isinstance(v, dict) else v for v in (old[key], config[key]))
            raise NotosError(f"{out_dir} holds an MT-Bench run with {option} {was}, not {now}; use another --out")
    return old


# -- generating and judging ------------------------------------------------------------------

@contextmanager
def progress_bars(enabled: bool, totals: dict[str, int]):
    """One bar per phase (turn 1, turn 2, judging); silent off a terminal or with enabled=False."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    bars = Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, disable=not (enabled and console.is_terminal))
    tasks = {name: bars.add_task(name, total=total) for name, total in totals.items()}
    with bars:
        yield lambda name, n: bars.update(tasks[name], advance=n)


async def _generate(llm, jobs: list[tuple], max_new_tokens: int, on_done) -> None:
    """jobs: (key, conversation, temperature). One generate call per temperature and CHUNK of
    conversations, all in flight together; `on_done(keys, generations)` as each call returns."""
    from notos.llms.types import GenerationParams

    by_temperature: dict[float, list[tuple]] = {}
    for job in jobs:
        by_temperature.setdefault(job[2], []).append(job)

    async def one_call(chunk, temperature):
        params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
        results = await llm.generate([conversation for _, conversation, _ in chunk], params)
        on_done([key for key, _, _ in chunk], results)

    calls = [one_call(group[i:i + CHUNK], temperature) for temperature, group in by_temperature.items()
             for i in range(0, len(group), CHUNK)]
    await asyncio.gather(*calls)


async def answer_questions(llm, questions: list[Question], max_new_tokens: int, on_answered, advance,
                           model_id: str | None = None) -> int:
    """Both turns for each question; the second turn's conversation holds the first exchange.
    Records carry `model_id` (default: the backend's model name). Returns the failures
    ("question 7, turn 1: HTTP 500 ..."): those questions are retried on the next run."""
    first: dict[str, str] = {}
    failed: list[str] = []
    by_key = {q.key: q for q in questions}

    def turn_one_done(keys, results):
        for key, result in zip(keys, results):
            if result.error or not result.texts:
                failed.append(f"question {key}, turn 1: {result.error or 'no answer'}")
            else:
                first[key] = result.texts[0]
        advance("turn 1 answers", len(keys))

    def turn_two_done(keys, results):
        records = []
        for key, result in zip(keys, results):
            if result.error or not result.texts:
                failed.append(f"question {key}, turn 2: {result.error or 'no answer'}")
            else:
                records.append(answer_record(by_key[key], model_id or llm.model_name, [first[key], result.texts[0]]))
        on_answered(records)
        advance("turn 2 answers", len(keys))

    def temperature(q):
        return TEMPERATURE.get(q.category, DEFAULT_TEMPERATURE)

    await _generate(llm, [(q.key, [{"role": "user", "content": q.turns[0]}], temperature(q)) for q in questions],
                    max_new_tokens, turn_one_done)
    second = [(q.key, [{"role": "user", "content": q.turns[0]}, {"role": "assistant", "content": first[q.key]},
                       {"role": "user", "content": q.turns[1]}], temperature(q)) for q in questions if q.key in first]
    await _generate(llm, second, max_new_tokens, turn_two_done)
    return failed


async def judge_turns(judge, asks: list[tuple[Question, int, list[str]]], references: dict, model_id: str,
                      max_new_tokens: int, on_judged, advance) -> list[str]:
    """asks: (question, turn, the answer's two turns). Greedy verdicts, FastChat's way.
    Returns the failed requests (retried on the next run); unreadable verdicts are kept as -1."""
    prompts = {(q.key, turn): (q, turn, *judge_messages(q, turns, turn, references)) for q, turn, turns in asks}
    failed: list[str] = []

    def done(keys, results):
        records = []
        for key, result in zip(keys, results):
            question, turn, messages, name = prompts[key]
            if result.error or not result.texts:
                failed.append(f"question {question.key}, turn {turn}: {result.error or 'no verdict'}")
            else:
                records.append(judgment_record(question, model_id, judge.model_name, name, turn, messages, result.texts[0]))
        on_judged(records)
        advance("judgments", len(keys))

    await _generate(judge, [(key, p[2], 0.0) for key, p in prompts.items()], max_new_tokens, done)
    return failed


# -- the whole run -----------------------------------------------------------------------------

def run_mt_bench(model, judge, questions, out_dir, *, references=None, question_ids: str | None = None,
                 limit: int | None = None, max_new_tokens: int = 1024, judge_max_new_tokens: int = 2048,
                 model_name: str | None = None, progress: bool = True, judge_mode: str = "auto") -> dict:
    """Answer, judge and summarise; returns summary.json's content. Rerun on the same folder to resume.
    judge_mode: text (the judge writes [[N]]), logprob (the expectation over 1..10 from its
    probabilities: small local judges) or auto (logprob for local judges, text for servers)."""
    from notos.llms.spec import check_spec, fingerprint_view
    from notos.tasks.judge_calls import check_judge_mode

    check_judge_mode(judge_mode, "--judge-mode")
    all_questions = load_questions(questions)
    chosen = select_questions(all_questions, question_ids, limit)
    refs = load_references(references) if references else {}
    check_spec(model)
    check_spec(judge)
    out_dir = Path(out_dir)
    config = {"kind": "mt-bench", "model": fingerprint_view(model), "judge": fingerprint_view(judge),
              "model_name": model_name, "questions": str(questions), "references": str(references) if references else None,
              "question_ids": question_ids, "limit": limit, "max_new_tokens": max_new_tokens,
              "judge_max_new_tokens": judge_max_new_tokens, "temperature": TEMPERATURE, "judge_mode": judge_mode}
    old = _check_resume(out_dir, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_name = config["model_name"] = model_name or old.get("model_name")
    config["model_id"], config["judge_id"] = old.get("model_id"), old.get("judge_id")
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    missing_refs = [q.key for q in chosen if q.category in NEED_REFERENCE and reference_for(q, refs, 1) is None]
    if missing_refs:
        log.info("MT-Bench: no reference answer for question %s: judged without one (pass --references)", ", ".join(missing_refs))
    ids = asyncio.run(_run(model, judge, chosen, refs, out_dir, max_new_tokens, judge_max_new_tokens, model_name, progress,
                           judge_mode))
    config["model_id"] = config["model_id"] or ids[0]
    config["judge_id"] = config["judge_id"] or ids[1]
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    summary = summarize(read_jsonl(out_dir / ANSWERS), read_jsonl(out_dir / JUDGMENTS), all_questions, chosen)
    summary.update(model=config["model_id"], judge=config["judge_id"])
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    write_mt_bench_report(out_dir, summary, all_questions)
    return summary


async def _run(model, judge, chosen, refs, out_dir, max_new_tokens, judge_max_new_tokens, model_name, progress,
               judge_mode="auto"):
    from notos.llms.spec import close_all, get_llm_async

    answers = {str(r["question_id"]): r for r in read_jsonl(out_dir / ANSWERS)}
    judged = {(str(r["question_id"]), r["turn"]) for r in read_jsonl(out_dir / JUDGMENTS)}
    to_answer = [q for q in chosen if q.key not in answers]
    model_id = model_name or next((r.get("model_id") for r in answers.values()), None)
    judge_id = None
    to_judge = len([1 for q in chosen for t in (1, 2) if (q.key, t) not in judged])

    def on_answered(records):
        _append(out_dir / ANSWERS, records)
        answers.update({str(r["question_id"]): r for r in records})

    try:
        with progress_bars(progress, {"turn 1 answers": len(to_answer), "turn 2 answers": len(to_answer),
                                      "judgments": to_judge}) as advance:
            if to_answer:
                llm = await get_llm_async(model)
                _note("answers", await answer_questions(llm, to_answer, max_new_tokens, on_answered, advance, model_id))
                model_id = model_id or llm.model_name
            asks = [(q, turn, answers[q.key]["choices"][0]["turns"]) for q in chosen if q.key in answers
                    for turn in (1, 2) if (q.key, turn) not in judged]
            if asks:
                from notos.tasks.judge_calls import judge_for

                judge_llm = judge_for(await get_llm_async(judge), judge, judge_mode, "single")
                _note("verdicts", await judge_turns(judge_llm, asks, refs, model_id or "model", judge_max_new_tokens,
                                                    lambda records: _append(out_dir / JUDGMENTS, records), advance))
                judge_id = judge_llm.model_name
    finally:
        await close_all()
    return model_id, judge_id


def _note(what: str, failures: list[str]) -> None:
    if failures:  # one line, not one per question: an outage fails them all the same way
        log.info("MT-Bench: %d %s failed (first: %s); rerun the same command to retry them", len(failures), what, failures[0])


# -- the figures -------------------------------------------------------------------------------

def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def category_order(categories) -> list[str]:
    return [c for c in CATEGORIES if c in categories] + sorted(set(categories) - set(CATEGORIES))


def summarize(answers: list[dict], judgments: list[dict], questions: list[Question], chosen: list[Question] | None = None) -> dict:
    """Means per turn, per category (both turns) and overall, over the verdicts that could be
    read (score -1 excluded), with how many could not. Covers everything the folder holds."""
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
    summary = {
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
    return summary


def print_summary(summary: dict, out_dir) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value):
        return "-" if value is None else f"{value:.2f}"

    table = Table(title=f"MT-Bench: {summary.get('model')} judged by {summary.get('judge')}", title_justify="left")
    for column in ("category", "turn 1", "turn 2", "mean"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for cat, mean in summary["per_category"].items():
        turns = summary["per_category_turn"][cat]
        table.add_row(cat, fmt(turns["turn_1"]), fmt(turns["turn_2"]), fmt(mean))
    table.add_row("[bold]overall[/bold]", fmt(summary["turn_1"]), fmt(summary["turn_2"]), f"[bold]{fmt(summary['overall'])}[/bold]")
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"  {summary['n_judged']} verdicts on {summary['n_questions']} questions, "
                  f"{summary['n_failed_to_parse']} could not be read (score -1, left out of the means)")
    if summary["n_unanswered"] or summary["n_unjudged"]:
        console.print(f"  [yellow]{summary['n_unanswered']} questions unanswered, {summary['n_unjudged']} turns unjudged "
                      "(requests failed): rerun the same command to retry them[/yellow]")
    console.print(f"  wrote {out_dir}/{{{ANSWERS}, {JUDGMENTS}, summary.json, report.html}}", highlight=False)


def write_mt_bench_report(out_dir: Path, summary: dict, questions: list[Question]) -> Path:
    from html import escape

    from notos.report.html import table_html, write_report
    from notos.evaluate.compare_runs import grouped_bars

    cats = list(summary["per_category"])
    turns = summary["per_category_turn"]
    plot = grouped_bars(cats, {"turn 1": [turns[c]["turn_1"] for c in cats], "turn 2": [turns[c]["turn_2"] for c in cats]},
                        ylabel="judge score (1-10)", ymax=10) if any(summary["per_category"].values()) else ""
    head = [{"figure": k, "value": summary[k]} for k in ("overall", "turn_1", "turn_2", "n_questions", "n_judged",
                                                         "n_failed_to_parse", "n_unanswered", "n_unjudged")]
    by_cat = [{"category": c, "turn 1": turns[c]["turn_1"], "turn 2": turns[c]["turn_2"], "mean": summary["per_category"][c]}
              for c in cats]
    judgments = read_jsonl(out_dir / JUDGMENTS)
    order = {q.key: i for i, q in enumerate(questions)}
    per_question: dict[str, dict] = {}
    for r in judgments:
        row = per_question.setdefault(str(r["question_id"]), {"question_id": r["question_id"], "category": r.get("category")})
        row[f"turn {r['turn']}"] = r["score"]
    rows = sorted(per_question.values(), key=lambda r: order.get(str(r["question_id"]), len(order)))
    failed = [{"question_id": r["question_id"], "turn": r["turn"], "why": r.get("parse_error"), "judgment": r["judgment"]}
              for r in judgments if r["score"] == FAILED]
    sections = [
        f"<p>Model <code>{escape(str(summary.get('model')))}</code>, judge <code>{escape(str(summary.get('judge')))}</code>. "
        "Scores 1-10 per turn; verdicts that could not be read (score -1) are left out of the means.</p>",
        table_html(head), "<h2>Per category</h2>", plot, table_html(by_cat),
        "<h2>Per question</h2>", table_html(rows, ["question_id", "category", "turn 1", "turn 2"], limit=200),
        "<h2>Verdicts that could not be read</h2>", table_html(failed),
    ]
    return write_report(out_dir, "MT-Bench", sections)
