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
from notos.tasks.judge_calls import JUDGE_MODES, NO_VERDICT, judge_ask, judge_text
from notos.tasks.judges import IN_ORDER, _SCORE_RE, pairwise_messages, parse_pairwise, parse_single, reconcile, single_messages
from notos.tasks.llm_steps import LLMTask, lists, llm_step, options_of

if TYPE_CHECKING:
    from notos.pipeline.step import Step

PREFERENCE_VALUE = {"1": 1.0, "2": 2.0, "tie": 1.5, None: None}


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
    options = options_of(llm_judge, locals())
    _check_columns(name, {"instruction_column": instruction_column, "response_column": response_column},
                   {"reference_column": reference_column, "context_column": context_column})
    _check_mode(name, mode)
    inputs = {instruction_column: "str", response_column: "any"}
    inputs.update({c: "any" for c in (reference_column, context_column) if c})
    return llm_step(GRADE, name, options, settings, inputs=inputs,
                    outputs=("judge_score", "judge_rationale", "judge_error", "judge_raw", "judge_model"))


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
    options = options_of(pairwise_judge, locals())
    _check_columns(name, {"instruction_column": instruction_column, "response_a_column": response_a_column,
                          "response_b_column": response_b_column}, {"reference_column": reference_column})
    if response_a_column == response_b_column:
        raise GraphError(f"step '{name}': option 'response_b_column' names the same column as response_a_column")
    if not isinstance(both_orders, bool):
        raise GraphError(f"step '{name}': option 'both_orders' must be true or false, got {both_orders!r}")
    _check_mode(name, mode)
    inputs = {instruction_column: "str", response_a_column: "str", response_b_column: "str"}
    if reference_column:
        inputs[reference_column] = "any"
    outputs = ("preference", "preference_value", "preference_consistent", "preference_errors", "judge_raw", "judge_model")
    return llm_step(PREFERENCE, name, options, settings, inputs=inputs, outputs=outputs)


def _check_columns(step_name: str, required: dict, optional: dict) -> None:
    for key, value in required.items():
        if not isinstance(value, str) or not value:
            raise GraphError(f"step '{step_name}': option '{key}' must be a column name, got {value!r}")
    for key, value in optional.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise GraphError(f"step '{step_name}': option '{key}' must be a column name or null, got {value!r}")


def _check_mode(name: str, mode: str) -> None:
    if mode not in JUDGE_MODES:
        raise GraphError(f"step '{name}': option 'mode' must be one of {', '.join(JUDGE_MODES)}, got {mode!r}")


def _reference(row: dict, column: str | None) -> str | None:
    # A row without a reference (None or "") is judged without one, under the plain prompt.
    value = row.get(column) if column else None
    return None if value is None or value == "" else str(value)


# ---------------------------------------------------------------- llm_judge: one grade per response

def build_grades(row: dict, *, instruction_column, response_column, reference_column, context_column, mode, llm, **_):
    responses = row[response_column]
    responses = [responses] if isinstance(responses, str) else list(responses or [])
    context = row.get(context_column) if context_column else None
    if not responses or any(not isinstance(r, str) for r in responses):
        return f"column '{response_column}' holds no responses or a non-text one"
    if context is not None and not isinstance(context, (list, tuple)):
        return f"column '{context_column}' must hold a list of [user, assistant] turns"
    try:
        messages = [single_messages(row[instruction_column], r, reference=_reference(row, reference_column),
                                    turn_context=context or None) for r in responses]
    except ValueError as exc:  # a malformed turn in the context column
        return f"column '{context_column}': {exc}"
    return [judge_ask(m, "single", mode, llm) for m in messages]


def parse_grade(answer, **_) -> dict | str:
    raw = judge_text(answer, "single")
    if raw is None:
        return NO_VERDICT
    parsed = parse_single(raw)
    return {"judge_score": None if parsed["score"] is None else float(parsed["score"]),
            "judge_rationale": _rationale(raw), "judge_error": parsed["error"], "judge_raw": raw}


def _rationale(text: str) -> str:
    # Everything before the last verdict: the judge's explanation. With no verdict, all of it.
    found = list(_SCORE_RE.finditer(text))  # the parser's own regex: one idea of a verdict
    return (text[: found[-1].start()] if found else text).strip()


def combine_grades(parsed: list[dict], *, row, response_column, **_) -> dict:
    """One value per response: plain values for a text column, lists for a list column."""
    return parsed[0] if isinstance(row[response_column], str) else lists(parsed)


GRADE = LLMTask("llm_judge", build=build_grades, parse=parse_grade, combine=combine_grades, model_column="judge_model")


# ---------------------------------------------------------------- pairwise_judge: both orders, reconciled

def build_comparisons(row: dict, *, instruction_column, response_a_column, response_b_column, reference_column,
                      both_orders, mode, llm, **_):
    """Order 0 shows (a, b); order 1 shows (b, a)."""
    q, a, b = row[instruction_column], row[response_a_column], row[response_b_column]
    if not (isinstance(a, str) and isinstance(b, str)):
        return f"columns '{response_a_column}' and '{response_b_column}' must both hold text"
    shown = [(a, b), (b, a)][: 2 if both_orders else 1]
    ref = _reference(row, reference_column)
    return [judge_ask(pairwise_messages(q, x, y, reference=ref), "pairwise", mode, llm) for x, y in shown]


def parse_comparison(answer, **_) -> dict | str:
    raw = judge_text(answer, "pairwise")
    if raw is None:
        return NO_VERDICT
    verdict = parse_pairwise(raw)
    return {"judge_raw": raw, "preference_errors": verdict["error"], "winner": verdict["winner"]}


def combine_comparisons(parsed: list[dict], *, both_orders, **_) -> dict:
    columns = lists(parsed)
    winners = columns.pop("winner")
    if both_orders:
        joined = reconcile(*winners)
        winner, consistent = joined["winner"], joined["consistent"]
    else:
        winner, consistent = IN_ORDER[winners[0]], None
    return {**columns, "preference": winner, "preference_value": PREFERENCE_VALUE[winner], "preference_consistent": consistent}


PREFERENCE = LLMTask("pairwise_judge", build=build_comparisons, parse=parse_comparison, combine=combine_comparisons,
                     model_column="judge_model")
