"""LLM-as-a-judge as pipeline steps, MT-Bench style: grade one answer 1-10, or pick the better of two.

    - name: grade
      type: llm_judge
      after: answer
      llm: openai:gpt-4o
      response_column: generations    # one response (a string) or a list of them
      reference_column: reference     # optional: a reference answer per row (math, coding)
      context_column: turns           # optional: earlier [user, assistant] turns (MT-Bench turn 2)

    - name: compare
      type: pairwise_judge
      after: answer
      llm: openai:gpt-4o
      response_a_column: ours
      response_b_column: baseline
      both_orders: true               # ask twice, answers swapped, to cancel position bias

`llm_judge` adds judge_score (1-10 as a float, None without a readable verdict), judge_rationale
(the text before the verdict), judge_error (why no score), judge_raw and judge_model; one value per
response, so lists for a list column. `pairwise_judge` adds preference ("1": response_a is better,
"2": response_b, "tie", None: no verdict), preference_value (1.0 / 2.0 / 1.5 for a tie, AlpacaEval's
scale), preference_consistent (whether both orders agreed; None with one order), preference_errors
and judge_raw (one per order), judge_model. A failed request fails its row; an unreadable verdict
never does: it leaves the score or preference None with the reason, and the raw text to re-parse.
`mode: logprob` reads the verdict from the judge's probabilities instead (the expectation over
1..10, or the likeliest of A/B/C): a small local judge always gives one; `auto` (the default)
uses it for local models and lets servers write their verdicts (see notos.tasks.judge_calls).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notos.errors import GraphError
from notos.tasks import judges
from notos.tasks.judge_calls import JUDGE_MODES, ask_judge, resolve_judge_mode
from notos.tasks.llm_steps import check_llm, check_params, llm_step

if TYPE_CHECKING:
    from notos.pipeline.step import Step

PREFERENCE_VALUE = {"1": 1.0, "2": 2.0, "tie": 1.5, None: None}


def _check_columns(step_name: str, required: dict, optional: dict) -> None:
    for key, value in required.items():
        if not isinstance(value, str) or not value:
            raise GraphError(f"step '{step_name}': option '{key}' must be a column name, got {value!r}")
    for key, value in optional.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise GraphError(f"step '{step_name}': option '{key}' must be a column name or null, got {value!r}")


def llm_judge(
    llm="embedded",
    instruction_column: str = "instruction",
    response_column: str = "response",
    reference_column: str | None = None,
    context_column: str | None = None,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    mode: str = "auto",
    *,
    name: str = "llm_judge",
    **settings,
) -> Step:
    check_llm(name, llm)
    _check_columns(name, {"instruction_column": instruction_column, "response_column": response_column},
                   {"reference_column": reference_column, "context_column": context_column})
    check_params(name, max_new_tokens=max_new_tokens, temperature=temperature)
    inputs = {instruction_column: "str", response_column: "any"}
    inputs.update({c: "any" for c in (reference_column, context_column) if c})
    options = {"llm": llm, "instruction_column": instruction_column, "response_column": response_column,
               "reference_column": reference_column, "context_column": context_column,
               "max_new_tokens": max_new_tokens, "temperature": temperature, "mode": _mode(name, mode)}
    return llm_step(name=name, fn=judge_batch, inputs=inputs, options=options, type_name="llm_judge",
                    outputs=("judge_score", "judge_rationale", "judge_error", "judge_raw", "judge_model"),
                    settings=settings)


def pairwise_judge(
    llm="embedded",
    instruction_column: str = "instruction",
    response_a_column: str = "response_a",
    response_b_column: str = "response_b",
    reference_column: str | None = None,
    both_orders: bool = True,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    mode: str = "auto",
    *,
    name: str = "pairwise_judge",
    **settings,
) -> Step:
    check_llm(name, llm)
    _check_columns(name, {"instruction_column": instruction_column, "response_a_column": response_a_column,
                          "response_b_column": response_b_column}, {"reference_column": reference_column})
    if response_a_column == response_b_column:
        raise GraphError(f"step '{name}': option 'response_b_column' names the same column as response_a_column")
    if not isinstance(both_orders, bool):
        raise GraphError(f"step '{name}': option 'both_orders' must be true or false, got {both_orders!r}")
    check_params(name, max_new_tokens=max_new_tokens, temperature=temperature)
    inputs = {instruction_column: "str", response_a_column: "str", response_b_column: "str"}
    if reference_column:
        inputs[reference_column] = "any"
    options = {"llm": llm, "instruction_column": instruction_column, "response_a_column": response_a_column,
               "response_b_column": response_b_column, "reference_column": reference_column,
               "both_orders": both_orders, "max_new_tokens": max_new_tokens, "temperature": temperature,
               "mode": _mode(name, mode)}
    outputs = ("preference", "preference_value", "preference_consistent", "preference_errors", "judge_raw", "judge_model")
    return llm_step(name=name, fn=pairwise_batch, inputs=inputs, outputs=outputs, options=options,
                    type_name="pairwise_judge", settings=settings)


def _mode(name: str, mode: str) -> str:
    if mode not in JUDGE_MODES:
        raise GraphError(f"step '{name}': option 'mode' must be one of {', '.join(JUDGE_MODES)}, got {mode!r}")
    return mode


def _reference(row: dict, column: str | None) -> str | None:
    # A row without a reference (None or "") is judged without one, under the plain prompt.
    value = row.get(column) if column else None
    return None if value is None or value == "" else str(value)


def _rationale(text: str) -> str:
    # Everything before the last verdict: the judge's explanation. With no verdict, all of it.
    found = list(judges._SCORE_RE.finditer(text))  # the parser's own regex: one idea of a verdict
    return (text[: found[-1].start()] if found else text).strip()


async def judge_batch(rows: list[dict], *, llm, instruction_column, response_column, reference_column,
                      context_column, max_new_tokens, temperature, mode="auto") -> list[dict]:
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    judge = await get_llm_async(llm)
    out = [{**row, "judge_model": judge.model_name, "_tokens": 0} for row in rows]
    # One request per (row, response), all in one call so the backend can batch them.
    asks = []  # (row index, response index or None for a string column, messages)
    for i, row in enumerate(rows):
        responses = row[response_column]
        single = isinstance(responses, str)
        responses = [responses] if single else list(responses or [])
        context = row.get(context_column) if context_column else None
        if not responses or any(not isinstance(r, str) for r in responses):
            out[i]["_error"] = f"column '{response_column}' holds no responses or a non-text one"
            continue
        if context is not None and not isinstance(context, (list, tuple)):
            out[i]["_error"] = f"column '{context_column}' must hold a list of [user, assistant] turns"
            continue
        try:
            messages = [judges.single_messages(row[instruction_column], r, reference=_reference(row, reference_column),
                                               turn_context=context or None) for r in responses]
        except ValueError as exc:  # a malformed turn in the context column
            out[i]["_error"] = f"column '{context_column}': {exc}"
            continue
        asks.extend((i, None if single else k, m) for k, m in enumerate(messages))
        for column in ("judge_score", "judge_rationale", "judge_error", "judge_raw"):
            out[i][column] = None if single else [None] * len(responses)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    results = await ask_judge(judge, [messages for _, _, messages in asks], params, resolve_judge_mode(mode, llm), "single")
    for (i, k, _), result in zip(asks, results):
        out[i]["_tokens"] += result.prompt_tokens + result.completion_tokens
        if result.error:
            out[i]["_error"] = result.error
            continue
        raw = result.texts[0]
        parsed = judges.parse_single(raw)
        values = {"judge_score": None if parsed["score"] is None else float(parsed["score"]),
                  "judge_rationale": _rationale(raw or ""), "judge_error": parsed["error"], "judge_raw": raw}
        for column, value in values.items():
            if k is None:
                out[i][column] = value
            else:
                out[i][column][k] = value
    return out


async def pairwise_batch(rows: list[dict], *, llm, instruction_column, response_a_column, response_b_column,
                         reference_column, both_orders, max_new_tokens, temperature, mode="auto") -> list[dict]:
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    judge = await get_llm_async(llm)
    orders = 2 if both_orders else 1
    out = [{**row, "judge_model": judge.model_name, "judge_raw": [None] * orders,
            "preference_errors": [None] * orders, "_tokens": 0} for row in rows]
    # Order 0 shows (a, b); order 1 shows (b, a). Every order of every row goes in one call.
    asks = []
    for i, row in enumerate(rows):
        q, a, b = row[instruction_column], row[response_a_column], row[response_b_column]
        if not (isinstance(a, str) and isinstance(b, str)):
            out[i]["_error"] = f"columns '{response_a_column}' and '{response_b_column}' must both hold text"
            continue
        ref = _reference(row, reference_column)
        shown = [(a, b), (b, a)][:orders]
        asks.extend((i, j, judges.pairwise_messages(q, x, y, reference=ref)) for j, (x, y) in enumerate(shown))
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    results = await ask_judge(judge, [messages for _, _, messages in asks], params, resolve_judge_mode(mode, llm), "pairwise")
    verdicts = [[None] * orders for _ in rows]
    for (i, j, _), result in zip(asks, results):
        out[i]["_tokens"] += result.prompt_tokens + result.completion_tokens
        if result.error:
            out[i]["_error"] = result.error
            continue
        verdicts[i][j] = judges.parse_pairwise(result.texts[0])
        out[i]["judge_raw"][j] = result.texts[0]
        out[i]["preference_errors"][j] = verdicts[i][j]["error"]
    for i, row in enumerate(out):
        if row.get("_error"):
            continue
        if both_orders:
            joined = judges.reconcile(*verdicts[i])
            winner, consistent = joined["winner"], joined["consistent"]
        else:
            winner = {"A": "1", "B": "2", "tie": "tie", None: None}[verdicts[i][0]["winner"]]
            consistent = None
        row.update(preference=winner, preference_value=PREFERENCE_VALUE[winner], preference_consistent=consistent)
    return out
