"""Every LLM step has one shape: a declaration (`LLMTask`) run by one runner (`run_llm_batch`).

A step type declares how to ask and how to read the answers; the runner does the rest, the same
way for all of them: it gets the model once per batch, builds `GenerationParams` once from the
options the task names, sends every request of the batch in one backend call (`generate`, or
`score_candidates` for log-prob asks), parses, fails only the rows whose request failed, counts
tokens and writes the model's name.

    row --build--> [Ask, ...] --backend--> answers --parse--> [columns, ...] --combine--> the row's columns

Adding an LLM step (e.g. `tasks/summary.py`):
1. Pure functions: `build(row, **options) -> [Ask(messages), ...]` (or a reason the row cannot be
   asked) and `parse(answer, **options) -> {column: value}` (or a reason the row fails). The
   answer is a `Generation` (`answer.texts[0]`), or `CandidateScores` for an Ask with candidates.
   Every hook is called with keywords: the step's options plus `row`, `batch` (the batch's rows)
   and `key` (the Ask's key, for parse); take the ones you need and end with `**_`. An output the
   parser cannot read is a column (`summary_error`) next to the raw text, never a silent None.
2. `SUMMARY = LLMTask("summary", build=..., parse=..., model_column="summary_model")`, plus
   `combine` when a row sends several requests (`lists`: one list per column), `params` when the
   step has generation options beyond max_new_tokens and temperature.
3. The factory: its signature is the option schema, listed once; defaults are the YAML defaults.

       def summary(llm="embedded", text_column="text", max_new_tokens=256, temperature=0.0, *,
                   name="summary", **settings) -> Step:
           options = options_of(summary, locals())
           return llm_step(SUMMARY, name, options, settings, inputs={text_column: "str"},
                           outputs=("summary", "summary_error", "summary_model"))

4. Export it from `notos/tasks/__init__.py` and name it in the step catalog (`recipes/catalog.py`).
Test it against the loopback server (`llm_server` fixture): a failed request, an unreadable answer.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from notos.errors import GraphError, NotosError

if TYPE_CHECKING:
    from notos.pipeline.step import Step

LLM_STEP_CONCURRENCY = 4  # batches in flight: keeps a remote server busy across batch edges
# A re-asked judge must not repeat itself: a greedy one would write the same unreadable text.
REASK_TEMPERATURE = 0.7
ERROR_KEY = re.compile(r"(^|_)errors?(_|$)")  # `error`, `rating_errors`, `rating_errors_honesty`
PARAM_FIELDS = {"num_generations": "n"}  # step option -> GenerationParams field, where the names differ


@dataclass(frozen=True)
class Ask:
    """One request: a conversation to answer, or, with `candidates`, to score (the probability of
    each candidate as the start of the reply, after the forced `prefix`)."""

    messages: list[dict]
    key: Any = None  # what parse needs to know about this request (an aspect, a method)
    candidates: tuple[str, ...] = ()
    prefix: str = ""
    temperature: float | None = None  # this row's own temperature; None: the step's
    seed: int | None = None  # this request's own seed (a re-ask draws another); None: the step's


def only_answer(parsed: list, **_) -> dict:
    """The default combine: one request per row, its columns are the row's."""
    return parsed[0]


def lists(parsed: list, **_) -> dict:
    """Several requests per row (one per response): one list per column, in request order."""
    return {column: [p[column] for p in parsed] for column in parsed[0]} if parsed else {}


@dataclass(frozen=True)
class LLMTask:
    type_name: str  # how YAML names the step
    build: Callable  # (row, *, batch, **options) -> [Ask, ...]; [] = nothing to ask; a str = why the row fails
    parse: Callable  # (answer, *, key, row, batch, **options) -> columns (dict) | why the row fails (str)
    model_column: str  # the column that names the model which answered
    combine: Callable = only_answer  # (parsed, *, row, **options) -> columns | [child columns, ...] (new rows) | reason
    params: tuple[str, ...] = ("max_new_tokens", "temperature")  # the options that are GenerationParams
    usage_column: str | None = None  # {prompt_tokens, completion_tokens} of each row, failed or not
    prepare: Callable | None = None  # (rows, **options) -> the same rows with the columns to start from
    finish: Callable | None = None  # (rows, **options) -> rows, after the last answer (drop rows)
    rounds: Callable | None = None  # (**options) -> how many times build/ask/parse run (each on the last's output)
    version: int = 1  # the step's fingerprint: bump it when the same options give other results


# ---------------------------------------------------------------- building the step

def options_of(factory: Callable, local_vars: dict) -> dict:
    """A factory's options, read from its own signature: `options_of(text_generation, locals())`
    as the first line of the factory. The signature is the option schema, written once."""
    return {p: local_vars[p] for p in inspect.signature(factory).parameters if p not in ("name", "settings")}


def llm_step(task: LLMTask, name: str, options: dict, settings: dict, *, inputs: dict, outputs) -> Step:
    """The Step for an LLM task: its options checked, several batches in flight, connection
    settings left out of the fingerprint, sessions closed at the end of a run."""
    from notos.llms.spec import fingerprint_view
    from notos.pipeline.step import Step

    check_llm(name, options["llm"])
    check_params(name, {key: options[key] for key in task.params})
    reask = settings.pop("reask_unparsed", None)
    if reask is not None and (not isinstance(reask, int) or isinstance(reask, bool) or reask < 0):
        raise GraphError(f"step '{name}': option 'reask_unparsed' must be a whole number >= 0, got {reask!r}")
    if reask is not None:  # kept with the options so pipeline.yaml shows it; not fingerprinted
        options = {**options, "reask_unparsed": reask}
    error_columns = tuple(c for c in outputs if ERROR_KEY.search(c))

    async def run_batch(rows: list[dict], **opts) -> list[dict]:
        return await run_llm_batch(rows, task, opts)

    def unparsed(row: dict) -> int:
        return sum(unreadable(row.get(c)) for c in error_columns)

    def result_options(opts: dict) -> dict:
        # Connection settings and how often to re-ask change no answer that was read.
        kept = {k: v for k, v in opts.items() if k != "reask_unparsed"}
        return {**kept, "llm": fingerprint_view(opts["llm"])}

    settings.setdefault("concurrency", LLM_STEP_CONCURRENCY)
    return Step(name=name, kind="map", fn=run_batch, per_row=False, inputs=inputs, outputs=tuple(outputs),
                options=options, type_name=task.type_name, version=task.version, teardown=close_llms,
                hash_options=result_options, unparsed=unparsed if error_columns else None, **settings)


def unreadable(value) -> int:
    """How many unreadable answers a parse error value stands for: a reason (1), a list of
    reasons (one per non-empty entry), a parsed answer (its error keys, nested), nothing (0)."""
    if isinstance(value, dict):
        return sum(unreadable(v) if ERROR_KEY.search(k) else unreadable_nested(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(unreadable(v) for v in value)
    return 1 if value not in (None, "") else 0


def unreadable_nested(value) -> int:
    """Error keys further down a parsed answer (a rating's `sections`); other values count 0."""
    if isinstance(value, dict):
        return unreadable(value)
    if isinstance(value, (list, tuple)):
        return sum(unreadable_nested(v) for v in value)
    return 0


def check_llm(step_name: str, llm) -> None:
    """A bad spec is a one-line error naming the step, before anything runs. The backend built
    to check it is the one the run uses (`check_spec` keeps it)."""
    from notos.llms.spec import check_spec

    try:
        check_spec(llm)
    except NotosError as exc:
        raise GraphError(f"step '{step_name}': {exc}") from None


def check_params(step_name: str, values: dict) -> None:
    """The generation options a step declares, checked by the same rules in every step."""
    for key, value in values.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = {
            "num_generations": number and isinstance(value, int) and value >= 1,
            "max_new_tokens": number and isinstance(value, int) and value >= 1,
            "temperature": number and value >= 0,
            "top_p": number and 0 < value <= 1,
            "stop": value is None or (isinstance(value, list) and all(isinstance(s, str) for s in value)),
            "seed": value is None or (isinstance(value, int) and not isinstance(value, bool)),
        }.get(key, True)
        if key == "stop" and not ok:
            raise GraphError(f"step '{step_name}': option 'stop' must be a list of strings")
        if key == "seed" and not ok:
            raise GraphError(f"step '{step_name}': option 'seed' must be an integer, got {value!r}")
        if not ok:
            raise GraphError(f"step '{step_name}': option '{key}' has a bad value {value!r}")


def resolve_mode(mode: str, llm) -> str:
    """auto: a local model is read from its probabilities (a small model cannot be trusted to
    write a format); a server writes its answer (an OpenAI-compatible API cannot force a prefix)."""
    from notos.llms.spec import parse_spec

    if mode != "auto":
        return mode
    return "text" if parse_spec(llm)["backend"] == "openai" else "logprob"


async def close_llms() -> None:
    from notos.llms.spec import close_all

    await close_all()


# ---------------------------------------------------------------- the runner

async def run_llm_batch(rows: list[dict], task: LLMTask, options: dict) -> list[dict]:
    """One batch of an LLM step: `options` are the step's, as its factory collected them."""
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    llm = await get_llm_async(options["llm"])
    params = GenerationParams(**{PARAM_FIELDS.get(k, k): options[k] for k in task.params})
    current = task.prepare(rows, **options) if task.prepare else list(rows)
    spent = [[0, 0] for _ in rows]  # prompt and completion tokens per row
    failed: dict[int, str] = {}  # row index -> why it failed
    children: dict[int, list[dict]] = {}  # row index -> the new rows it becomes
    for _ in range(task.rounds(**options) if task.rounds else 1):
        # Build every live row's requests, send them all at once, then read each row's answers.
        asked: dict[int, list[Ask]] = {}
        for i, row in enumerate(current):
            if i in failed or i in children:
                continue
            built = _call(task.build, row, batch=current, **options)
            if isinstance(built, str):
                failed[i] = built
            elif built:
                asked[i] = [resample(a, params) for a in built] if row.get("_reask") else built
        flat = [(i, ask) for i, asks in asked.items() for ask in asks]
        answers = await send(llm, [ask for _, ask in flat], params)
        per_row: dict[int, list] = {}
        for (i, ask), answer in zip(flat, answers):
            spent[i][0] += getattr(answer, "prompt_tokens", 0)
            spent[i][1] += getattr(answer, "completion_tokens", 0)
            per_row.setdefault(i, []).append((ask, answer))
        parsed_rows: dict[int, list] = {}
        for i, pairs in per_row.items():
            reason = next((answer.error for _, answer in pairs if answer.error), None)  # a failed request fails its row
            parsed_rows[i] = [] if reason else [_call(task.parse, answer, key=ask.key, row=current[i], batch=current,
                                                      **options) for ask, answer in pairs]
            if reason:
                failed[i] = reason
        await reask_unreadable(llm, params, task, current, per_row, parsed_rows, spent, options)
        for i, parsed in parsed_rows.items():
            if i in failed:
                continue
            reason = next((p for p in parsed if isinstance(p, str)), None)
            columns = reason or _call(task.combine, parsed, row=current[i], **options)
            if isinstance(columns, str):
                failed[i] = columns
            elif isinstance(columns, list):
                children[i] = columns
            else:
                current[i] = {**current[i], **columns}
    out = []
    for i, row in enumerate(current):
        done = {task.model_column: llm.model_name, "_tokens": sum(spent[i])}
        if task.usage_column:
            done[task.usage_column] = {"prompt_tokens": spent[i][0], "completion_tokens": spent[i][1]}
        if i in failed:  # a failed row leaves as it came in, with the reason
            out.append({**rows[i], **done, "_error": failed[i]})
        elif i in children:  # one new row per child, the tokens counted once
            out.extend({**row, **done, **child, "row_id": f"{row['row_id']}.{k}", "_tokens": done["_tokens"] if k == 0 else 0}
                       for k, child in enumerate(children[i]))
        else:
            out.append({**row, **done})
    return task.finish(out, **options) if task.finish else out


async def reask_unreadable(llm, params, task: LLMTask, rows: list[dict], per_row: dict, parsed_rows: dict,
                           spent: list, options: dict) -> None:
    """Ask again the requests whose answer arrived but could not be read (a rating with no
    readable number), up to `reask_unparsed` times, at REASK_TEMPERATURE and a new seed each
    time; a better-read answer replaces the first. A row asked again after an earlier run could
    not read it (`_reask`, from `retry_unparsed`) skips the greedy first try's twin: its first
    re-ask is already at the raised temperature."""
    tries = options.get("reask_unparsed") or 0
    for attempt in range(1, tries + 1):
        todo = [(i, j) for i, parsed in parsed_rows.items() for j, p in enumerate(parsed)
                if not isinstance(p, str) and unreadable(p) and not per_row[i][j][0].candidates]
        if not todo:
            return
        asks = [reask(per_row[i][j][0], params, attempt) for i, j in todo]
        answers = await send(llm, asks, params)
        for (i, j), ask, answer in zip(todo, asks, answers):
            spent[i][0] += getattr(answer, "prompt_tokens", 0)
            spent[i][1] += getattr(answer, "completion_tokens", 0)
            if answer.error:
                continue  # the first answer stands: it was received, only unreadable
            again = _call(task.parse, answer, key=ask.key, row=rows[i], batch=rows, **options)
            if not isinstance(again, str) and unreadable(again) < unreadable(parsed_rows[i][j]):
                parsed_rows[i][j] = again


def resample(ask: Ask, params) -> Ask:
    """A request asked again in a later run because its answer could not be read: sampled at
    the raised temperature with a fresh seed (a greedy judge would repeat itself); a log-prob
    request is deterministic and stays as it is."""
    if ask.candidates:
        return ask
    return reask(ask, params, random.randrange(1, 2**20))


def reask(ask: Ask, params, attempt: int) -> Ask:
    """The same request, sampled: a raised temperature and a seed of its own per attempt."""
    base = params.seed if ask.seed is None else ask.seed
    temperature = max(REASK_TEMPERATURE, params.temperature if ask.temperature is None else float(ask.temperature))
    return replace(ask, temperature=temperature, seed=(base or 0) + 7919 * attempt)


def _call(hook: Callable, *args, **kwargs):
    """A task's hook; an exception fails only the row it was working on, with its reason."""
    try:
        return hook(*args, **kwargs)
    except NotosError:
        raise
    except Exception as exc:  # noqa: BLE001 - one row's failure must not void the batch
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def send(llm, asks: list[Ask], params) -> list:
    """One backend call per kind of request (generation at one temperature, or scoring among one
    set of candidates), all at once; the answers come back in the order of `asks`."""
    groups: dict[tuple, list[int]] = {}
    for i, ask in enumerate(asks):
        if ask.candidates:
            groups.setdefault(("score", ask.candidates), []).append(i)
        else:
            temperature = params.temperature if ask.temperature is None else float(ask.temperature)
            seed = params.seed if ask.seed is None else ask.seed
            groups.setdefault(("generate", (temperature, seed)), []).append(i)

    async def call(kind, value, members):
        conversations = [asks[i].messages for i in members]
        if kind == "score":
            return await llm.score_candidates(conversations, list(value), prefix=[asks[i].prefix for i in members])
        temperature, seed = value
        same = temperature == params.temperature and seed == params.seed
        return await llm.generate(conversations, params if same else replace(params, temperature=temperature, seed=seed))

    answers: list = [None] * len(asks)
    results = await asyncio.gather(*(call(kind, value, members) for (kind, value), members in groups.items()))
    for members, group_answers in zip(groups.values(), results):
        for i, answer in zip(members, group_answers):
            answers[i] = answer
    return answers


def drop_rows(rows: list[dict], dropped: list[dict]) -> list[dict]:
    """The rows not in `dropped`; the dropped rows' tokens were still spent, so they are
    counted on the first kept row (when one is left)."""
    gone = {id(r) for r in dropped}
    kept = [r for r in rows if id(r) not in gone]
    if kept:
        kept[0]["_tokens"] = kept[0].get("_tokens", 0) + sum(r.get("_tokens", 0) for r in dropped)
    return kept
