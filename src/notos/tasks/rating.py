"""UltraFeedback rating as a pipeline step: N responses to one instruction, rated 1-5 per aspect.

    - name: rate
      type: ultrafeedback_rating
      after: combine
      llm: openai:gpt-4o            # a strong judge; the embedded model shows the mechanics only
      aspects: overall-rating       # or a list, or `all` (the four UltraFeedback aspects)
      mode: auto                    # text: the judge writes sections; logprob: P("1".."5");
                                    # auto: logprob on local models, text on servers

Columns added, per aspect (one aspect: `ratings`, `rationales`; several: `ratings_<aspect>`...):
ratings (list, one per response, None where the judge gave none), ratings_expected (the
expectation over "1".."5" in logprob mode, the rating itself in text mode), rationales, types and
type_rationales (truthfulness, helpfulness), rating_errors (why a response got no rating),
plus `rating_model` and `rating_raw` (the judge's text per aspect, kept for re-parsing).
The responses are shown in a seeded per-row order (position bias) and mapped back, so a
rating always lands on its own response. A failed request fails the row; an unparseable
section only leaves that response unrated, with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notos.errors import GraphError
from notos.tasks import ultrafeedback as uf
from notos.tasks.llm_steps import check_llm, check_params, llm_step

if TYPE_CHECKING:
    from notos.pipeline.step import Step

FOUR = ("instruction-following", "honesty", "truthfulness", "helpfulness")
CANDIDATES = ["1", "2", "3", "4", "5"]


def _aspect_list(aspects) -> list[str]:
    if aspects == "all":
        return list(FOUR)
    names = [aspects] if isinstance(aspects, str) else list(aspects or [])
    if not names:
        raise ValueError("aspects must name at least one aspect")
    return [uf.normalize_aspect(a) for a in names]


def column_names(aspects: list[str]) -> dict[str, dict[str, str]]:
    """aspect -> {field: column}: plain names for one aspect, suffixed by aspect for several."""
    # ratings_expected in both modes (the rating itself in text mode): one schema downstream.
    fields = ["ratings", "ratings_expected", "rationales", "rating_errors"]
    names = {}
    for aspect in aspects:
        own = fields + (["types", "type_rationales"] if aspect in uf.TYPED_ASPECTS else [])
        suffix = "" if len(aspects) == 1 else "_" + aspect.replace("-", "_")
        names[aspect] = {f: f + suffix for f in own}
    return names


def ultrafeedback_rating(
    llm="embedded",
    aspects="overall-rating",
    instruction_column: str = "instruction",
    generations_column: str = "generations",
    mode: str = "auto",
    shuffle: bool = True,
    seed: int = 0,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    correct_answers_column: str | None = None,
    incorrect_answers_column: str | None = None,
    *,
    name: str = "ultrafeedback_rating",
    **settings,
) -> Step:
    check_llm(name, llm)
    try:
        aspect_list = _aspect_list(aspects)
    except ValueError as exc:
        raise GraphError(f"step '{name}': {exc}") from None
    if mode not in ("auto", "text", "logprob"):
        raise GraphError(f"step '{name}': option 'mode' must be auto, text or logprob, got {mode!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise GraphError(f"step '{name}': option 'seed' must be an integer, got {seed!r}")
    check_params(name, max_new_tokens=max_new_tokens, temperature=temperature)
    inputs = {instruction_column: "str", generations_column: "list"}
    for column in (correct_answers_column, incorrect_answers_column):
        if column:
            inputs[column] = "any"
    columns = column_names(aspect_list)
    outputs = [c for names in columns.values() for c in names.values()] + ["rating_model", "rating_raw"]
    options = {
        "llm": llm, "aspects": aspect_list, "instruction_column": instruction_column,
        "generations_column": generations_column, "mode": mode, "shuffle": shuffle, "seed": seed,
        "max_new_tokens": max_new_tokens, "temperature": temperature,
        "correct_answers_column": correct_answers_column, "incorrect_answers_column": incorrect_answers_column,
    }
    return llm_step(name=name, fn=rate_batch, inputs=inputs, outputs=outputs, options=options,
                    type_name="ultrafeedback_rating", settings=settings)


def resolve_mode(mode: str, llm) -> str:
    """auto: a local model is scored by its probabilities of "1".."5" (a small model cannot be
    trusted to write the sections); a server judge writes them (OpenAI cannot force a prefix)."""
    from notos.llms.spec import parse_spec

    if mode != "auto":
        return mode
    return "text" if parse_spec(llm)["backend"] == "openai" else "logprob"


def _prompt(row: dict, aspect: str, order: list[int], o: dict, examples: bool = True) -> list[dict]:
    shown = uf.apply_order([str(g) for g in row[o["generations_column"]]], order)
    knowledge = {}
    if o["correct_answers_column"]:
        knowledge["correct_answers"] = row.get(o["correct_answers_column"])
    if o["incorrect_answers_column"]:
        knowledge["incorrect_answers"] = row.get(o["incorrect_answers_column"])
    return uf.build_messages(aspect, row[o["instruction_column"]], shown, examples=examples, **knowledge)


async def rate_batch(rows: list[dict], **o) -> list[dict]:
    from notos.llms.spec import get_llm_async
    from notos.llms.types import GenerationParams

    judge = await get_llm_async(o["llm"])
    mode = resolve_mode(o["mode"], o["llm"])
    columns = column_names(o["aspects"])
    out = [{**row, "rating_model": judge.model_name, "rating_raw": {}, "_tokens": 0} for row in rows]
    live = [i for i, row in enumerate(rows) if _responses_ok(row, o, out[i])]
    orders = {i: uf.rate_order(rows[i]["row_id"], len(rows[i][o["generations_column"]]), o["seed"])
              if o["shuffle"] else list(range(len(rows[i][o["generations_column"]]))) for i in live}
    for aspect in o["aspects"]:
        prompts = {i: _prompt(rows[i], aspect, orders[i], o, examples=mode == "text") for i in live}
        if mode == "text":
            params = GenerationParams(max_new_tokens=o["max_new_tokens"], temperature=o["temperature"])
            results = await judge.generate([prompts[i] for i in live], params)
            for i, result in zip(live, results):
                out[i]["_tokens"] += result.prompt_tokens + result.completion_tokens
                if result.error:
                    out[i]["_error"] = result.error
                    continue
                raw = result.texts[0]
                out[i]["rating_raw"][aspect] = raw
                parsed = uf.parse_ratings(raw, len(orders[i]), aspect)
                for p in parsed:
                    p["expected"] = None if p["rating"] is None else float(p["rating"])
                _fill(out[i], columns[aspect], uf.map_back(parsed, orders[i]))
        else:
            await _rate_by_logprobs(judge, live, prompts, orders, aspect, columns[aspect], out)
        live = [i for i in live if not out[i].get("_error")]
    return out


def _responses_ok(row: dict, o: dict, target: dict) -> bool:
    responses = row[o["generations_column"]]
    if not responses or any(r is None for r in responses):
        target["_error"] = f"column '{o['generations_column']}' holds no responses or a missing one"
        return False
    return True


async def _rate_by_logprobs(judge, live, prompts, orders, aspect, names, out) -> None:
    """Per shown text k: force "#### Output for Text k / Rating: " and read P("1".."5"). One
    call for every (row, text): local backends compute each row's prompt once for its texts."""
    pairs = [(i, k) for i in live for k in range(len(orders[i]))]
    scores = await judge.score_candidates([prompts[i] for i, _ in pairs], CANDIDATES,
                                          prefix=[f"#### Output for Text {k + 1}\nRating: " for _, k in pairs])
    per_row: dict[int, list] = {i: [None] * len(orders[i]) for i in live}
    for (i, k), score in zip(pairs, scores):
        if score.error:
            per_row[i][k] = {"rating": None, "expected": None, "error": score.error}
        else:
            per_row[i][k] = uf.ratings_from_probs([score.probs])[0]
    for i in live:
        parsed = [{**p, "rationale": None} for p in per_row[i]]
        out[i]["rating_raw"][aspect] = None
        _fill(out[i], names, uf.map_back(parsed, orders[i]))


def _fill(row: dict, names: dict[str, str], parsed: list[dict]) -> None:
    sources = {"ratings": "rating", "rationales": "rationale", "rating_errors": "error", "types": "type",
               "type_rationales": "rationale_for_type", "ratings_expected": "expected"}
    for field, column in names.items():
        row[column] = [p.get(sources[field]) for p in parsed]
