"""Hand-off to Argilla 2.x: an Argilla dataset built with the real SDK, and its answers read back
as edits.

    export_argilla(source, Path("out/argilla"))              # the SDK's disk format, no server
    export_argilla(source, out, api_url=URL, api_key=KEY)     # and pushed to a running server
    import_argilla(Path("records.json"), source, log)         # annotators' responses -> edits log

The dataset (one Argilla record per prompt, id = prompt_id):
    fields      prompt, response_0 .. response_{K-1} (K: most completions of a prompt)
    questions   rating_<aspect>_<k> (1-5) for every aspect and response; chosen and rejected
                (labels response_0 ..); discard (keep / discard); note (text). None required.
    metadata    source, model_<k>, principle_<k>, overall_score_<k>, audit_flags (terms), severity (float)
    suggestions the AI feedback: every rating (agent: the judge), and chosen / rejected under the
                review's binarization (agent: "notos binarize <strategy>")

On disk it is what `rg.Dataset.to_disk` writes (.argilla/dataset.json, .argilla/settings.json,
records.json) and `rg.Dataset.from_disk` reads into a server. `to_disk` itself reads the
records back from a server, so without one the same three files are written with the SDK's own
serializers (the dataset model, `Settings.to_json`, the records' `to_dict`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from notos.data.completions import na_column, rating_column, rationale_column
from notos.data.edits import MARKS, edit
from notos.errors import NotosError, require_extra

JUDGE = "ultrafeedback judge"
CHOSEN_LABELS = "response_{}"


def response_field(k: int) -> str:
    return CHOSEN_LABELS.format(k)


def rating_question(aspect: str, k: int) -> str:
    return f"rating_{aspect}_{k}"


@contextmanager
def offline_client():
    """The SDK's default client, pointed at no server while the dataset is built (its objects
    ask for a client; without a server the stock one fails on creation)."""
    rg = require_extra("argilla", "argilla")

    class Offline(rg.Argilla):
        def _validate_connection(self):
            pass  # nothing is sent: the dataset is only serialized

    saved = rg.Argilla._default_client
    rg.Argilla._default_client = Offline(api_url="http://offline.invalid", api_key="offline")
    try:
        yield rg.Argilla._default_client
    finally:
        rg.Argilla._default_client = saved


def build_settings(rg, aspects: list[str], width: int, guidelines: str):
    labels = [response_field(k) for k in range(width)]
    fields = [rg.TextField(name="prompt", title="Prompt", use_markdown=True)]
    fields += [rg.TextField(name=response_field(k), title=f"Response {k}", use_markdown=True, required=k == 0)
               for k in range(width)]
    questions = [rg.RatingQuestion(name=rating_question(a, k), values=[1, 2, 3, 4, 5], title=f"{a} of response {k}",
                                   required=False) for k in range(width) for a in aspects]
    questions += [rg.LabelQuestion(name="chosen", labels=labels, title="Chosen response", required=False),
                  rg.LabelQuestion(name="rejected", labels=labels, title="Rejected response", required=False),
                  rg.LabelQuestion(name="discard", labels=["keep", "discard"], title="Keep this prompt?", required=False),
                  rg.TextQuestion(name="note", title="Note", required=False)]
    metadata = [rg.TermsMetadataProperty(name="source"), rg.TermsMetadataProperty(name="audit_flags"),
                rg.FloatMetadataProperty(name="severity")]
    metadata += [rg.TermsMetadataProperty(name=f"model_{k}") for k in range(width)]
    metadata += [rg.TermsMetadataProperty(name=f"principle_{k}") for k in range(width)]
    metadata += [rg.FloatMetadataProperty(name=f"overall_score_{k}") for k in range(width)]
    return rg.Settings(fields=fields, questions=questions, metadata=metadata, guidelines=guidelines,
                       allow_extra_metadata=True)


def build_records(rg, session) -> list:
    """One Argilla record per prompt of the review session (its current edits applied)."""
    index, table = session.index, session.completions.table
    columns = {name: table.column(name).to_pylist() for name in
               ["completion_index", "model", "response", "overall_score", "prompt", "source"]
               + (["principle"] if "principle" in table.column_names else [])
               + [c for a in session.completions.aspects for c in (rating_column(a), na_column(a), rationale_column(a))]}
    records = []
    for p, pid in enumerate(index.id_list):
        rows = [int(r) for r in index.rows_of(p)]
        first = rows[0]
        fields = {"prompt": columns["prompt"][first] or ""}
        metadata = {"source": columns["source"][first] or "unknown", "severity": float(index.keys["severity"][p])}
        suggestions, flags = [], set()
        for row in rows:
            k = columns["completion_index"][row]
            fields[response_field(k)] = columns["response"][row] or ""
            metadata[f"model_{k}"] = columns["model"][row] or "unknown"
            if columns.get("principle", [None] * (row + 1))[row]:
                metadata[f"principle_{k}"] = columns["principle"][row]
            if columns["overall_score"][row] is not None:
                metadata[f"overall_score_{k}"] = float(columns["overall_score"][row])
            flags.update(f for f in index.flag_info.get(row, {}).get("flags", []))
            for a in session.completions.aspects:
                value = columns[rating_column(a)][row]
                if value is not None and float(value).is_integer():
                    suggestions.append(rg.Suggestion(rating_question(a, k), int(value), agent=JUDGE))
        if flags:
            metadata["audit_flags"] = sorted(flags)
        chosen, rejected = session.pairs.get(pid, (None, None))
        agent = f"notos binarize {session.source.strategy}"
        if chosen is not None:
            suggestions.append(rg.Suggestion("chosen", response_field(chosen), agent=agent))
        if rejected is not None:
            suggestions.append(rg.Suggestion("rejected", response_field(rejected), agent=agent))
        records.append(rg.Record(id=pid, fields=fields, metadata=metadata, suggestions=suggestions))
    return records


def export_argilla(session, out: Path, *, name: str = "notos-review", api_url: str | None = None,
                   api_key: str | None = None, workspace: str | None = None) -> dict:
    """Write the dataset in the SDK's disk format under `out`; with api_url also push it."""
    rg = require_extra("argilla", "argilla")
    width = session.index.width  # response_<k> for every completion_index in the data
    guidelines = ("Rate each response per aspect (1-5), pick the chosen and rejected response, discard prompts "
                  "that should not be trained on. Suggestions are the AI feedback (UltraFeedback-style judge) "
                  f"and notos's {session.source.strategy} binarization.")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise NotosError(f"--out {out}: exists and is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    with offline_client() as client:
        settings = build_settings(rg, session.completions.aspects, width, guidelines)
        dataset = rg.Dataset(name=name, settings=settings, client=client)
        records = build_records(rg, session)
        dataset_path, settings_path, records_path = rg.Dataset._define_child_paths(out)
        dataset_path.write_text(json.dumps(dataset._model.model_dump(mode="json")))
        settings.to_json(settings_path)
        records_path.write_text(json.dumps([r.to_dict() for r in records], ensure_ascii=False))
    result = {"out": str(out), "records": len(records), "questions": len(settings.questions), "pushed": None}
    if api_url:
        result["pushed"] = push_argilla(rg, out, name, api_url, api_key, workspace)
    return result


def push_argilla(rg, folder: Path, name: str, api_url: str, api_key: str | None, workspace: str | None) -> str:
    """Load the exported folder into a running Argilla server (the SDK's from_disk)."""
    if not api_key:
        raise NotosError("--api-key-env: the variable is unset or empty (Argilla needs an API key)")
    try:
        client = rg.Argilla(api_url=api_url, api_key=api_key, timeout=15, retries=1)
    except Exception as exc:  # noqa: BLE001 - the SDK raises httpx / its own errors: one line either way
        raise NotosError(f"--api-url {api_url}: no Argilla server answered ({_first_line(exc)})") from None
    try:
        dataset = rg.Dataset.from_disk(str(folder), name=name, workspace=workspace, client=client)
    except Exception as exc:  # noqa: BLE001
        raise NotosError(f"--api-url {api_url}: pushing the dataset failed ({_first_line(exc)})") from None
    return f"{api_url} dataset {dataset.name}"


def import_argilla(path: Path, session, origin: str = "argilla") -> list[dict]:
    """Edits from annotators' responses in records the SDK exported (records.json, a folder
    holding records.json, or `dataset.records.to_json` output): a response that
    differs from what the data holds now becomes one edit."""
    rg = require_extra("argilla", "argilla")
    path = Path(path)
    if path.is_dir():
        path = path / "records.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NotosError(f"{path}: not an Argilla records export ({_first_line(exc)})") from None
    if not isinstance(raw, list):
        raise NotosError(f"{path}: not an Argilla records export (expected a list of records)")
    aspects = session.completions.aspects
    edits = []
    for number, item in enumerate(raw, 1):
        record = rg.Record.from_dict(item)
        pid = str(record.id)
        if pid not in session.index.position:
            raise NotosError(f"{path}: record {number} has id '{pid}', which is not a prompt of this data")
        current = session.record(pid)
        for question, values in _responses(record).items():
            value = values[-1]
            edits += _edits_for(pid, question, value, current, aspects, origin)
    return edits


def _responses(record) -> dict:
    answers: dict = {}
    for response in record.responses:
        answers.setdefault(response.question_name, []).append(response.value)
    return answers


def _edits_for(pid: str, question: str, value, record: dict, aspects: list[str], origin: str) -> list[dict]:
    if question in MARKS:
        k = _label_index(value)
        return [] if k is None or k == record[question] else [edit(pid, question, k, old=record[question],
                                                                    completion_index=k, origin=origin)]
    if question == "discard":
        wanted = value == "discard"
        return [] if wanted == record["discarded"] else [edit(pid, "discard", wanted, old=record["discarded"], origin=origin)]
    if question == "note":
        return [edit(pid, "note", str(value), old=record["note"] or None, origin=origin)] if value else []
    for aspect in aspects:
        prefix = f"rating_{aspect}_"
        if question.startswith(prefix) and question[len(prefix):].isdigit():
            k = int(question[len(prefix):])
            completion = next((c for c in record["completions"] if c["index"] == k), None)
            if completion is None:
                return []
            old = next(a["rating"] for a in completion["ratings"] if a["aspect"] == aspect)
            if old is not None and float(old) == float(value):
                return []
            return [edit(pid, rating_column(aspect), int(value), old=old, completion_index=k, origin=origin)]
    return []


def _label_index(value) -> int | None:
    text = str(value)
    prefix = CHOSEN_LABELS.format("")
    return int(text[len(prefix):]) if text.startswith(prefix) and text[len(prefix):].isdigit() else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
