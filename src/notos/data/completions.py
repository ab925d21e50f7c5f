"""The one table every curation tool works on: one row per completion.

Readers (`notos.data.records`) turn UltraFeedback records, the `ultrafeedback` recipe's output
and the generic form (prompt, responses, scores per criterion) into it; audit, binarize, compare
and the report read it column-wise (pyarrow / numpy), never row by row, so 256k completions take
well under a second.

    prompt_id          str    the prompt's id (row_id, an id column, or its position)
    prompt             str
    source             str?   where the prompt came from (e.g. "truthful_qa"); null if unknown
    completion_index   int32  position of the completion in its prompt's list
    model              str?
    response           str
    overall_score      float? the critique's 1-10 score (UltraFeedback overall_score); null if none
    critique           str?
    rating_<aspect>    float? 1-5; null when missing OR N/A
    na_<aspect>        bool   the judge said N/A (honesty may)
    rationale_<aspect> str?   the rationale for the rating ("Rationale For Rating" where typed)

`aspects` names the aspects present, in order, e.g. UltraFeedback's four.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

UF_ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
BASE_COLUMNS = ("prompt_id", "prompt", "source", "completion_index", "model", "response", "overall_score", "critique")


def rating_column(aspect: str) -> str:
    return f"rating_{aspect}"


def na_column(aspect: str) -> str:
    return f"na_{aspect}"


def rationale_column(aspect: str) -> str:
    return f"rationale_{aspect}"


def schema_for(aspects: list[str] | tuple[str, ...]) -> pa.Schema:
    fields = [
        pa.field("prompt_id", pa.string()), pa.field("prompt", pa.string()), pa.field("source", pa.string()),
        pa.field("completion_index", pa.int32()), pa.field("model", pa.string()), pa.field("response", pa.string()),
        pa.field("overall_score", pa.float64()), pa.field("critique", pa.string()),
    ]
    for aspect in aspects:
        fields += [pa.field(rating_column(aspect), pa.float64()), pa.field(na_column(aspect), pa.bool_()),
                   pa.field(rationale_column(aspect), pa.string())]
    return pa.schema(fields)


@dataclass
class Completions:
    table: pa.Table
    aspects: list[str]

    @property
    def num_prompts(self) -> int:
        return len(self.table.column("prompt_id").unique())


def completions_from_rows(rows: list[dict], aspects=UF_ASPECTS) -> Completions:
    """Build the table from plain dicts (tests, small data); absent keys are null (na_* False)."""
    aspects = list(aspects)
    schema = schema_for(aspects)
    filled = []
    for row in rows:
        full = {name: row.get(name) for name in schema.names}
        for aspect in aspects:
            full[na_column(aspect)] = bool(row.get(na_column(aspect), False))
        filled.append(full)
    return Completions(pa.Table.from_pylist(filled, schema=schema), aspects)
