"""Rated rows -> UltraFeedback records, the shape openbmb/UltraFeedback is published in:

    {instruction, source, models: [...], completions: [{model, principle, custom_system_prompt,
     response, annotations: {instruction_following: {Rating, Rationale}, honesty: {...},
     truthfulness: {Type, Rationale, Rating, Rationale For Rating}, helpfulness: {...}},
     critique, overall_score, fine-grained_score}]}

Ratings are strings "1".."5" (honesty may be "N/A"), Types lists of "1".."3" ("0" = none), as
in the published data, so curation and other tools read notos output and UltraFeedback alike.
A response the judge left unrated gets Rating None and the reason under "Error"; one the critic
left unscored gets overall_score None and the reason in `critique_error`.

    - name: records
      type: ultrafeedback_records
      after: critique
      aspects: auto                # the aspects the rating step used (read from rating_raw)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notos.errors import GraphError
from notos.tasks.llm_steps import options_of
from notos.tasks.rating import _aspect_list, column_names

if TYPE_CHECKING:
    from notos.pipeline.step import Step

RECORD_COLUMNS = ("instruction", "source", "models", "completions")


def ultrafeedback_records(
    aspects="auto",
    instruction_column: str = "instruction",
    generations_column: str = "generations",
    models_column: str = "generation_models",
    principles_column: str | None = None,
    system_prompts_column: str | None = None,
    source: str | None = None,
    keep: list[str] | None = None,
    *,
    name: str = "ultrafeedback_records",
    **settings,
) -> Step:
    from notos.pipeline.step import Step

    options = options_of(ultrafeedback_records, locals())
    try:
        options["aspects"] = "auto" if aspects == "auto" else _aspect_list(aspects)
    except ValueError as exc:
        raise GraphError(f"step '{name}': {exc}") from None
    inputs = {instruction_column: "str", generations_column: "list", models_column: "list"}
    inputs.update({c: "list" for c in (principles_column, system_prompts_column) if c})
    keep = options["keep"] = list(keep or [])
    return Step(name=name, kind="map", fn=to_records, per_row=False, inputs=inputs, outputs=RECORD_COLUMNS,
                options=options, type_name="ultrafeedback_records", cache=False,
                columns_after=lambda before: list(RECORD_COLUMNS) + keep, **settings)


def to_records(rows: list[dict], **o) -> list[dict]:
    return [{"row_id": row["row_id"], "_error": row.get("_error"), **record(row, **o)} for row in rows]


def record(row: dict, *, aspects, instruction_column, generations_column, models_column,
           principles_column, system_prompts_column, source, keep) -> dict:
    responses = list(row[generations_column])
    n = len(responses)
    if aspects == "auto":  # the rating step keeps each aspect's raw judge text under its name
        aspects = list(row.get("rating_raw") or {})
    per_response = {
        "model": row.get(models_column) or [None] * n,
        "principle": row.get(principles_column) if principles_column else None,
        "custom_system_prompt": row.get(system_prompts_column) if system_prompts_column else None,
        "critique": row.get("critiques"),
        "overall_score": row.get("overall_scores"),
    }
    names = column_names(aspects)
    completions = []
    for k, response in enumerate(responses):
        annotations = {aspect.replace("-", "_"): _annotation(row, names[aspect], k) for aspect in aspects}
        ratings = [float(a["Rating"]) for a in annotations.values() if a["Rating"] not in (None, "N/A")]
        completions.append({
            "model": _at(per_response["model"], k), "principle": _at(per_response["principle"], k),
            "custom_system_prompt": _at(per_response["custom_system_prompt"], k), "response": response,
            "annotations": annotations, "critique": _at(per_response["critique"], k),
            "overall_score": _at(per_response["overall_score"], k),
            # UltraFeedback's fine-grained score: the mean of the aspect ratings (N/A left out).
            "fine-grained_score": round(sum(ratings) / len(ratings), 4) if ratings else None,
        })
        if "critique_errors" in row:  # why an overall_score is None: the critic's reply had no readable score
            completions[-1]["critique_error"] = _at(row["critique_errors"], k)
    out = {"instruction": row[instruction_column], "source": row.get("source", source),
           "models": [c["model"] for c in completions], "completions": completions}
    out.update({column: row.get(column) for column in keep})
    return out


def _at(values, k):
    return values[k] if isinstance(values, (list, tuple)) and k < len(values) else None


def _annotation(row: dict, columns: dict[str, str], k: int) -> dict:
    rating = _at(row.get(columns["ratings"]), k)
    error = _at(row.get(columns["rating_errors"]), k)
    # No rating and no error is the judge's N/A: the parser allows it for honesty only.
    shown = str(int(rating)) if rating is not None else "N/A" if error is None else None
    annotation = {"Rating": shown, "Rationale": _at(row.get(columns["rationales"]), k)}
    if "types" in columns:
        kind = _at(row.get(columns["types"]), k)
        annotation = {
            "Type": None if kind is None else ["0"] if kind == "None" else kind.split(","),
            "Rationale": _at(row.get(columns["type_rationales"]), k),
            "Rating": shown, "Rationale For Rating": annotation["Rationale"],
        }
    if error:
        annotation["Error"] = error
    return annotation
