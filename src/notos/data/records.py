"""Preference records in the shapes they come in, turned into the completions table.

    raw = read_raw("runs/uf")                    # whatever `locate` finds: a file, parts, a run folder
    completions = normalize(raw, origin="runs/uf")
    completions = read_completions("ultrafeedback.jsonl")   # both at once

Shapes (`format=`), detected from the columns when "auto":

    ultrafeedback  UltraFeedback records as openbmb publishes them and notos's `ultrafeedback`
                   recipe writes them: instruction, source, models, completions[{model, response,
                   annotations{aspect: {Rating "1".."5" | "N/A", Rationale, Type,
                   "Rationale For Rating"}}, critique, overall_score, ...}]
    generic        prompt, responses [str], scores {criterion: [number per response]} or
                   columns scores_<criterion>; optional models [str], source
    rated          what notos's rating step leaves in a run folder (the `quickstart` recipe's
                   output, any pipeline ending in `ultrafeedback_rating`): instruction | prompt,
                   generations [str], ratings [1-5 per generation] (one aspect, named `rating`)
                   or ratings_<aspect> (several), optional generation_models, rationales[_<aspect>],
                   and a critique step's critiques / overall_scores
    completions    the normalized table itself (prompt_id, completion_index, response, ...), so
                   curation tools chain

Everything is column-wise: list<struct> columns are flattened with pyarrow.compute, so 64k
records x 4 completions normalize in about a second. A prompt's id is its `row_id`, else a
`prompt_id` or `id` column, else its row position; `prompt_ids(raw)` applies the same rule so a
caller can filter the raw rows by the ids curation kept and write them back in their own shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from notos.data.completions import (
    UF_ASPECTS,
    Completions,
    na_column,
    rating_column,
    rationale_column,
    schema_for,
)
from notos.data.locate import locate
from notos.data.tables import read_table, table_from_rows
from notos.errors import DataError

FORMATS = ("auto", "ultrafeedback", "generic", "rated", "completions")
ID_COLUMNS = ("row_id", "prompt_id", "id")
COMPLETION_COLUMNS = ("prompt_id", "completion_index", "response")
_STRING = pa.string()


def read_completions(path_or_table, *, format: str = "auto", aspects=None) -> Completions:
    """Read a file, folder, run folder, Table or list of dicts into the completions table."""
    origin = path_or_table if isinstance(path_or_table, (str, Path)) else "input"
    return normalize(read_raw(path_or_table, only_needed=True), format=format, aspects=aspects, origin=str(origin))


def read_raw(path_or_table, only_needed: bool = False) -> pa.Table:
    """The input as it is: whatever `locate` finds at a path (a Parquet / JSONL / JSON file, a folder
    of parts, a run folder's one leaf, a curate output, a saved `datasets` folder), a Table or a
    list of dicts. `only_needed`: skip the UltraFeedback fields the completions table never reads."""
    if isinstance(path_or_table, pa.Table):
        return path_or_table
    if isinstance(path_or_table, list):
        return table_from_rows(path_or_table, "input")
    if data_path(path_or_table) != path_or_table:  # an audit folder: the data it audited
        return read_raw(data_path(path_or_table), only_needed)
    location = locate(path_or_table)
    if location.format == "csv":  # records nest lists of structs: CSV cannot hold them
        raise DataError(f"{path_or_table}: unknown file type '{Path(path_or_table).suffix.lower()}' for preference "
                        "data (use .parquet, .jsonl, .json or a folder)")
    table = read_table(location, columns=_needed_columns if only_needed else None)
    aspect = _rated_aspect_of_run(location) if location.kind == "run" else None
    return table.replace_schema_metadata({**(table.schema.metadata or {}), ASPECT_KEY: aspect}) if aspect else table


def data_path(path):
    """Where the data of a path is: the path itself, or for a `notos curate audit` folder (flags
    beside the data, not the data) the data it audited, as its config.json names it, so the next
    stage can be given the audit's folder as it is."""
    folder = Path(path)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8")) if folder.is_dir() else None
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict) or config.get("tool") != "notos curate" or config.get("command") != "audit":
        return path
    audited = str(config.get("input") or "")
    if not audited or not Path(audited).exists():
        raise DataError(f"{path}: an audit folder holds flags, not the data, and the data it audited "
                        f"({audited or 'unknown'}) is gone; pass that data instead")
    return type(path)(audited) if isinstance(path, (str, Path)) else audited


def _rated_aspect_of_run(location) -> str | None:
    """The aspect a run's one rating step rated, from its pipeline.yaml: the name its bare
    `ratings` column goes by (the column does not say)."""
    import yaml

    try:
        steps = yaml.safe_load((Path(location.spec) / "pipeline.yaml").read_text(encoding="utf-8")).get("steps") or []
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None
    rated = [s.get("aspects") for s in steps if isinstance(s, dict) and s.get("type") == "ultrafeedback_rating"]
    if len(rated) != 1:
        return None
    aspects = rated[0] if isinstance(rated[0], list) else [rated[0]]
    return _key(aspects[0]) if len(aspects) == 1 and isinstance(aspects[0], str) and aspects[0] != "all" else None


def detect_format(raw: pa.Table, origin: str = "input") -> str:
    names = set(raw.column_names)
    if set(COMPLETION_COLUMNS) <= names:
        return "completions"
    if "completions" in names and names & {"instruction", "prompt"}:
        return "ultrafeedback"
    if {"prompt", "responses"} <= names:
        return "generic"
    if "generations" in names and names & {"instruction", "prompt"}:
        return "rated"
    hint = ""
    if names & {"instruction", "prompt"} and names & {"generation", "response", "output", "completion"}:
        hint = " (one answer per prompt is SFT data: train on it with `notos train sft --data ...`)"
    elif {"chosen", "rejected"} <= names:
        hint = " (these are preference pairs already: train on them with `notos train dpo --data ...`)"
    raise DataError(
        f"{origin}: not a known preference-data shape (columns: {', '.join(raw.column_names) or 'none'}); expected "
        "UltraFeedback records (instruction, completions), a notos run's rated generations (instruction, "
        "generations, ratings), the generic form (prompt, responses, scores) or a completions table "
        f"(prompt_id, completion_index, response){hint}")


def normalize(raw: pa.Table, *, format: str = "auto", aspects=None, origin: str = "input",
              texts: bool = True) -> Completions:
    """The raw table as one row per completion (see `notos.data.completions`). texts=False: UltraFeedback
    records read without their texts (`notos.curate.scan`'s key leaves): no response is required, and
    the texts not read come out null."""
    if format not in FORMATS:
        raise DataError(f"{origin}: unknown format '{format}' (choose from {', '.join(FORMATS)})")
    if format == "auto":
        format = detect_format(raw, origin)
    needed = {"ultrafeedback": ("completions", "instruction|prompt"), "generic": ("prompt", "responses"),
              "rated": ("generations", "instruction|prompt"), "completions": COMPLETION_COLUMNS}[format]
    for column in needed:
        options = column.split("|")
        if not set(options) & set(raw.column_names):
            either = "' or '".join(options)
            raise DataError(f"{origin}: format '{format}' needs column '{either}' "
                            f"(columns: {', '.join(raw.column_names)})")
    wanted = None if aspects is None else [_key(a) for a in aspects]
    if format == "ultrafeedback":
        return _from_ultrafeedback(raw, wanted, origin, texts)
    reader = {"generic": _from_generic, "rated": _from_rated, "completions": _from_completions}[format]
    return reader(raw, wanted, origin)


def prompt_ids(raw: pa.Table, origin: str = "input") -> pa.Array:
    """The prompt_id of each raw row, by the rule `normalize` uses."""
    if set(COMPLETION_COLUMNS) <= set(raw.column_names):
        return _combined(pc.cast(raw.column("prompt_id"), pa.string()))
    positions = pa.array(np.arange(raw.num_rows)).cast(pa.string())
    for name in ID_COLUMNS:
        if name in raw.column_names:
            ids = pc.coalesce(pc.cast(_combined(raw.column(name)), pa.string()), positions)
            if pc.count_distinct(ids).as_py() != len(ids):
                counts = pc.value_counts(ids)
                repeated = counts.filter(pc.greater(pc.struct_field(counts, "counts"), 1))[0]["values"]
                raise DataError(f"{origin}: column '{name}' holds duplicate ids (e.g. '{repeated}'); "
                                "each record must be one prompt")
            return ids
    return positions


# Leaves of UltraFeedback records the completions table never reads: skipping them when only
# the completions are wanted reads a full-size file ~40% faster (nested Parquet decodes slowly).
_UNUSED_LEAVES = re.compile(r"\.(principle|custom_system_prompt|fine-grained_score)$|\.Type\.|"
                            r"^(correct_answers|incorrect_answers)\.|"
                            r"\.(truthfulness|helpfulness)\.Rationale$")


def _needed_columns(paths: list[str]) -> list[str] | None:
    """A Parquet file's column paths minus the leaves above (None: not UltraFeedback records)."""
    if not any(p.startswith("completions.") for p in paths):
        return None
    return [p for p in paths if not _UNUSED_LEAVES.search(p)]


# --- the three shapes ----------------------------------------------------------------------------

def _from_ultrafeedback(raw: pa.Table, wanted, origin: str, texts: bool = True) -> Completions:
    ids = prompt_ids(raw, origin)
    flat, parent, index = _flatten(_list_column(raw, "completions", "a list of records", origin))
    n = len(flat)
    if not pa.types.is_struct(flat.type):
        raise DataError(f"{origin}: column 'completions' holds {flat.type}, expected records (model, response, ...)")
    if texts and not _children([flat], "response"):
        raise DataError(f"{origin}: completions have no 'response' field (fields: {', '.join(f.name for f in flat.type)})")
    prompt_column = "instruction" if "instruction" in raw.column_names else "prompt"

    def part(name, kind=_STRING):
        return _cast(_merge(_children([flat], name), n, kind), kind, origin, f"completions.{name}")

    model = part("model")
    if "models" in raw.column_names:  # older records name models only in the top-level list
        model = pc.coalesce(model, _cast(_element_at(raw.column("models"), parent, index), _STRING, origin, "models"))
    columns = {
        "prompt_id": ids.take(parent), "prompt": _top(raw, prompt_column, parent, origin),
        "source": _top(raw, "source", parent, origin), "completion_index": pa.array(index, pa.int32()),
        "model": model, "response": part("response"),
        "overall_score": part("overall_score", pa.float64()), "critique": part("critique"),
    }
    annotations = [a for a in _children([flat], "annotations") if pa.types.is_struct(a.type)]
    present = list(dict.fromkeys(_key(f.name) for a in annotations for f in a.type))
    aspects = _choose_aspects(present, wanted, origin)
    for aspect in aspects:
        columns.update(_aspect_columns(_children(annotations, aspect), n, aspect, ids, parent, index, origin))
    return _assemble(columns, aspects)


def _aspect_columns(variants: list, n: int, aspect: str, ids, parent, index, origin: str) -> dict:
    """rating_/na_/rationale_ columns of one aspect (its variants' fields merged); a bad rating is a
    one-line error."""
    variants = [v for v in variants if pa.types.is_struct(v.type)]
    rating, na = _parse_ratings(_merge(_children(variants, "rating"), n), aspect, ids, parent, index, origin)
    # Typed aspects (truthfulness, helpfulness): "Rationale" explains the Type; the rating's own
    # rationale is "Rationale For Rating".
    own = _children(variants, "rationale_for_rating")
    rationale = _merge(own or _children(variants, "rationale"), n)
    return {rating_column(aspect): rating, na_column(aspect): na,
            rationale_column(aspect): _cast(rationale, pa.string(), origin, f"{aspect} rationale")}


def _children(structs: list, key: str) -> list:
    """Every child of the struct columns whose name spells `key` in some variant."""
    return [pc.struct_field(s, f.name) for s in structs for f in s.type if _key(f.name) == key]


def _merge(parts: list, n: int, kind=_STRING):
    """One column from the variants of a field (rows spell it one way or another); nulls if none."""
    if not parts:
        return pa.nulls(n, kind)
    if len({p.type for p in parts}) > 1:
        parts = [pc.cast(p, pa.string()) for p in parts]
    return parts[0] if len(parts) == 1 else pc.coalesce(*parts)


def _parse_ratings(values, aspect, ids, parent, index, origin):
    n = len(values)
    if pa.types.is_null(values.type):
        return pa.nulls(n, pa.float64()), pa.array(np.zeros(n, bool))
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        rating, na = pc.cast(values, pa.float64()), pa.array(np.zeros(n, bool))
        bad = pc.fill_null(pc.or_(pc.less(rating, 1), pc.greater(rating, 5)), False)
    else:
        text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
        na = pc.fill_null(pc.match_substring_regex(text, r"(?i)^n/?a$"), False)
        number = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]+(\.[0-9]+)?$"), False)
        rating = pc.cast(pc.if_else(number, text, pa.scalar(None, pa.string())), pa.float64())
        out_of_range = pc.fill_null(pc.or_(pc.less(rating, 1), pc.greater(rating, 5)), False)
        bad = pc.or_(pc.and_(pc.is_valid(text), pc.invert(pc.or_(na, number))), out_of_range)
    if pc.any(bad).as_py():
        at = int(np.flatnonzero(_np(bad))[0])
        row = int(parent[at])
        raise DataError(f"{origin}: row {row + 1} (prompt_id '{ids[row]}'), completion {int(index[at])}, aspect "
                        f"'{aspect}': rating {_combined(values)[at].as_py()!r} is not 1-5 or N/A")
    return _combined(rating), _combined(na)


def _from_generic(raw: pa.Table, wanted, origin: str) -> Completions:
    ids = prompt_ids(raw, origin)
    flat, parent, index = _flatten(_list_column(raw, "responses", "a list of texts", origin))
    columns = {
        "prompt_id": ids.take(parent), "prompt": _top(raw, "prompt", parent, origin),
        "source": _top(raw, "source", parent, origin), "completion_index": pa.array(index, pa.int32()),
        "model": _cast(_element_at(raw.column("models"), parent, index), _STRING, origin, "models")
        if "models" in raw.column_names else pa.nulls(len(flat), _STRING),
        "response": _cast(flat, pa.string(), origin, "responses"),
        "overall_score": pa.nulls(len(flat), pa.float64()), "critique": pa.nulls(len(flat), pa.string()),
    }
    scores = {}  # criterion -> (column label, list column)
    if "scores" in raw.column_names:
        struct = _combined(raw.column("scores"))
        if not pa.types.is_struct(struct.type):
            raise DataError(f"{origin}: column 'scores' is {struct.type}, expected {{criterion: [score per response]}}")
        scores.update({_key(f.name): (f"scores.{f.name}", pc.struct_field(struct, f.name)) for f in struct.type})
    for name in raw.column_names:
        if name.startswith("scores_"):
            scores[_key(name[len("scores_"):])] = (name, _combined(raw.column(name)))
    aspects = _choose_aspects(list(scores), wanted, origin)
    lengths = _np(pc.fill_null(pc.list_value_length(_combined(raw.column("responses"))), 0))
    for aspect in aspects:
        label, lists = scores[aspect]
        if not pa.types.is_list(lists.type) and not pa.types.is_large_list(lists.type):
            raise DataError(f"{origin}: column '{label}' is {lists.type}, expected a list of scores per response")
        given = _np(pc.list_value_length(lists).fill_null(-1))
        mismatch = np.flatnonzero((given != -1) & (given != lengths))
        if len(mismatch):
            row = int(mismatch[0])
            raise DataError(f"{origin}: row {row + 1} (prompt_id '{ids[row]}'): '{label}' has {given[row]} scores "
                            f"for {lengths[row]} responses")
        values = _cast(_element_at(lists, parent, index), pa.float64(), origin, label)
        columns[rating_column(aspect)] = values
        columns[na_column(aspect)] = pa.array(np.zeros(len(flat), bool))
        columns[rationale_column(aspect)] = pa.nulls(len(flat), pa.string())
    return _assemble(columns, aspects)


# The rating step's columns (notos.tasks.rating): one aspect leaves `ratings`, several leave
# `ratings_<aspect>`; `ratings_expected[_<aspect>]` is the same rating as an expectation, not an aspect.
RATED_ASPECT = "rating"  # the bare `ratings` column's aspect when the run's pipeline.yaml does not name it
ASPECT_KEY = b"notos.rated_aspect"


def _rated_aspects(raw: pa.Table) -> dict[str, str]:
    """aspect -> its ratings column."""
    names = raw.column_names
    bare = ((raw.schema.metadata or {}).get(ASPECT_KEY) or RATED_ASPECT.encode()).decode()
    found = {bare: "ratings"} if "ratings" in names else {}
    for name in names:
        if name.startswith("ratings_") and not name.startswith("ratings_expected"):
            found[_key(name[len("ratings_"):])] = name
    return found


def _from_rated(raw: pa.Table, wanted, origin: str) -> Completions:
    """A run's rated generations read as the generic form (generations are its responses, each
    ratings column a criterion), then given the rationales and the critique where the run has them."""
    names = raw.column_names
    aspects = _rated_aspects(raw)
    generic = {"prompt": raw.column("instruction" if "instruction" in names else "prompt"),
               "responses": raw.column("generations"),
               **{f"scores_{aspect}": raw.column(column) for aspect, column in aspects.items()}}
    for name in (*ID_COLUMNS, "source"):
        if name in names:
            generic[name] = raw.column(name)
    models = next((m for m in ("generation_models", "models") if m in names), None)
    if models:
        generic["models"] = raw.column(models)
    completions = _from_generic(pa.table(generic), wanted, origin)
    _check_rating_range(completions, origin)
    _, parent, index = _flatten(_list_column(raw, "generations", "a list of texts", origin))
    extra = {"critique": "critiques", "overall_score": "overall_scores"}
    for aspect in completions.aspects:
        column = aspects[aspect].replace("ratings", "rationales", 1)
        extra[rationale_column(aspect)] = column
    table = completions.table
    for target, source in extra.items():
        if source in names:
            kind = table.schema.field(target).type
            values = _cast(_element_at(raw.column(source), parent, index), kind, origin, source)
            table = table.set_column(table.schema.get_field_index(target), target, values)
    return Completions(table, completions.aspects)


def _check_rating_range(completions: Completions, origin: str) -> None:
    for aspect in completions.aspects:
        rating = completions.table.column(rating_column(aspect))
        bad = pc.fill_null(pc.or_(pc.less(rating, 1), pc.greater(rating, 5)), False)
        if pc.any(bad).as_py():
            at = int(np.flatnonzero(_np(bad))[0])
            row = completions.table.slice(at, 1).to_pylist()[0]
            raise DataError(f"{origin}: prompt_id '{row['prompt_id']}', generation {row['completion_index']}, aspect "
                            f"'{aspect}': rating {row[rating_column(aspect)]!r} is not 1-5")


def _from_completions(raw: pa.Table, wanted, origin: str) -> Completions:
    present = [name[len("rating_"):] for name in raw.column_names if name.startswith("rating_")]
    aspects = _choose_aspects(present, wanted, origin, keep_order=True)
    schema = schema_for(aspects)
    columns = {}
    for field in schema:
        if field.name in raw.column_names:
            columns[field.name] = _cast(raw.column(field.name), field.type, origin, field.name)
        elif field.type == pa.bool_():
            columns[field.name] = pa.array(np.zeros(raw.num_rows, bool))
        else:
            columns[field.name] = pa.nulls(raw.num_rows, field.type)
    for aspect in aspects:
        columns[na_column(aspect)] = pc.fill_null(columns[na_column(aspect)], False)
    return _assemble(columns, aspects)


# --- column helpers ------------------------------------------------------------------------------

def _list_column(raw: pa.Table, name: str, expected: str, origin: str):
    column = raw.column(name)
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        raise DataError(f"{origin}: column '{name}' is {column.type}, expected {expected}")
    return column


def _flatten(lists):
    """Flat values of a list column, each value's parent row, and its position in its list.
    Chunks are kept: the flat values (the responses, most of the bytes) are never copied."""
    flat = pc.list_flatten(lists)
    parent = _np(pc.list_parent_indices(lists)).astype(np.int64)
    lengths = _np(pc.fill_null(pc.list_value_length(lists), 0)).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    return flat, parent, np.arange(len(parent), dtype=np.int64) - starts[parent]


def _element_at(lists, parent, index):
    """lists[parent[i]][index[i]] for every i (null where that list is null or too short)."""
    lists = _combined(lists)
    if not (pa.types.is_list(lists.type) or pa.types.is_large_list(lists.type)):
        return pa.nulls(len(parent), pa.string())
    lengths = _np(pc.fill_null(pc.list_value_length(lists), 0)).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    ok = index < lengths[parent]
    where = np.where(ok, starts[parent] + index, 0)
    flat = pc.list_flatten(lists)
    if len(flat) == 0:
        return pa.nulls(len(parent), flat.type)
    return flat.take(pa.array(where, mask=~ok))


def _top(raw: pa.Table, name: str, parent, origin: str):
    """A per-prompt column repeated for each of the prompt's completions."""
    if name not in raw.column_names:
        return pa.nulls(len(parent), pa.string())
    return _cast(_combined(raw.column(name)), pa.string(), origin, name).take(pa.array(parent))


def _choose_aspects(present: list[str], wanted, origin: str, keep_order: bool = False) -> list[str]:
    if wanted is None:
        if keep_order:
            return present
        known = [a for a in UF_ASPECTS if a in present]
        return known + [a for a in present if a not in known]
    missing = [a for a in wanted if a not in present]
    if missing:
        raise DataError(f"{origin}: no aspect '{missing[0]}' in the data (aspects: {', '.join(present) or 'none'})")
    return list(wanted)


def _assemble(columns: dict, aspects: list[str]) -> Completions:
    schema = schema_for(aspects)
    return Completions(pa.table([columns[f.name] for f in schema], schema=schema), aspects)


def _cast(values, kind, origin: str, label: str):
    if values.type == kind:
        return values
    try:
        return pc.cast(values, kind)
    except (pa.ArrowException, NotImplementedError) as exc:
        raise DataError(f"{origin}: column '{label}' holds {values.type}, not {kind} ({str(exc).splitlines()[0]})") from None


def _key(name: str) -> str:
    """Field-name variants meet: 'instruction-following', 'Rationale For Rating' -> snake_case."""
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


def _combined(values):
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _np(values) -> np.ndarray:
    return _combined(values).to_numpy(zero_copy_only=False)
