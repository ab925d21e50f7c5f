"""`notos export argilla` with the real Argilla SDK (2.x), loaded back with the SDK and checked field
by field; `notos import argilla` turns annotators' responses into edits; the push path fails in one
line naming the server when none answers (no Argilla server can run here: it needs Elasticsearch)."""

import json
import socket

import pytest

from notos.data.edits import read_edits

rg = pytest.importorskip("argilla", reason="the Argilla hand-off needs the argilla SDK (pip install 'argilla>=2.4,<3')")

from notos.review.argilla_io import offline_client


def load_back(folder):
    """What rg.Dataset.from_disk reads, through the SDK's own loaders (from_disk itself needs a server)."""
    with offline_client():
        dataset_path, settings_path, records_path = rg.Dataset._define_child_paths(folder)
        model = rg.Dataset._load_dataset_model(dataset_path)
        settings = rg.Settings.from_json(settings_path)
        records = [rg.Record.from_dict(r) for r in json.loads(records_path.read_text())]
    return model, settings, records


def test_export_builds_an_argilla_dataset(cli, review_data, tmp_path):
    result = cli("export", "argilla", review_data, "--out", tmp_path / "argilla", "--name", "uf-review")
    assert result.returncode == 0, result.stderr
    assert "wrote 13 records" in result.stdout
    model, settings, records = load_back(tmp_path / "argilla")
    assert model.name == "uf-review"
    assert [f.name for f in settings.fields] == ["prompt", "response_0", "response_1", "response_2"]
    questions = {q.name: q for q in settings.questions}
    aspects = ("instruction_following", "honesty", "truthfulness", "helpfulness")
    for k in range(3):
        for aspect in aspects:
            question = questions[f"rating_{aspect}_{k}"]
            assert isinstance(question, rg.RatingQuestion) and list(question.values) == [1, 2, 3, 4, 5]
    assert isinstance(questions["chosen"], rg.LabelQuestion)
    assert list(questions["chosen"].labels) == ["response_0", "response_1", "response_2"]
    assert isinstance(questions["note"], rg.TextQuestion) and len(questions) == 12 + 4
    assert {m.name for m in settings.metadata} >= {"source", "audit_flags", "severity", "model_0", "overall_score_0"}
    by_id = {r.id: r for r in records}
    assert len(by_id) == 13
    f2 = by_id["f2"]
    assert f2.fields["prompt"] == "Question f2: explain item f2." and f2.fields["response_2"].startswith("Answer 2 to f2.")
    assert f2.metadata["source"] == "sharegpt" and f2.metadata["audit_flags"] == ["critique_disagrees"]
    assert f2.metadata["model_1"] == "model-1" and f2.metadata["overall_score_0"] == 10.0
    assert f2.metadata["principle_1"] == "honesty"
    assert f2.metadata["severity"] == pytest.approx(3.9375)
    suggestions = {s.question_name: s for s in f2.suggestions}
    assert suggestions["rating_honesty_1"].value == 5 and suggestions["rating_honesty_1"].agent == "ultrafeedback judge"
    assert suggestions["rating_truthfulness_1"].value == 4
    assert suggestions["chosen"].value == "response_1" and suggestions["chosen"].agent == "notos binarize mean"
    assert suggestions["rejected"].value in ("response_0", "response_2")
    assert "chosen" not in {s.question_name for s in by_id["u0"].suggestions} or \
        {s.question_name: s for s in by_id["u0"].suggestions}["chosen"].value == "response_0"
    # A second export into the same folder is refused, not mixed.
    again = cli("export", "argilla", review_data, "--out", tmp_path / "argilla")
    assert again.returncode == 2 and "not empty" in again.stderr


def test_import_turns_responses_into_edits(cli, review_data, tmp_path):
    assert cli("export", "argilla", review_data, "--out", tmp_path / "argilla").returncode == 0
    _, _, records = load_back(tmp_path / "argilla")
    user = "00000000-0000-0000-0000-000000000001"
    answered = []
    for record in records:
        if record.id == "f2":
            record.responses.add(rg.Response("rating_honesty_1", 2, user_id=user))
            record.responses.add(rg.Response("rating_truthfulness_1", 4, user_id=user))  # the same as the data: no edit
            record.responses.add(rg.Response("chosen", "response_2", user_id=user))
            record.responses.add(rg.Response("note", "the critique 10 is wrong", user_id=user))
        if record.id == "u3":
            record.responses.add(rg.Response("discard", "discard", user_id=user))
        answered.append(record.to_dict())
    exported = tmp_path / "records.json"  # what dataset.records.to_json writes from a server
    exported.write_text(json.dumps(answered))
    result = cli("import", "argilla", exported, "--data", review_data)
    assert result.returncode == 0, result.stderr
    assert "imported 4 edits" in result.stdout
    edits = read_edits(review_data.parent / "uf.review" / "edits.jsonl")
    assert sorted((e["prompt_id"], e["field"], e["completion_index"], e["old"], e["new"]) for e in edits) == [
        ("f2", "chosen", 2, 1, 2), ("f2", "note", None, None, "the critique 10 is wrong"),
        ("f2", "rating_honesty", 1, 5.0, 2), ("u3", "discard", None, False, True)]
    assert {e["origin"] for e in edits} == {"argilla"}


def test_push_without_a_server_is_one_line_naming_it(cli, review_data, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = cli("export", "argilla", review_data, "--out", tmp_path / "a", "--api-url", url,
                 env={"ARGILLA_API_KEY": "secret-key-123"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert url in result.stderr and "no Argilla server answered" in result.stderr
    assert "secret-key-123" not in result.stderr + result.stdout
    assert (tmp_path / "a" / "records.json").is_file()  # the local dataset is kept
    result = cli("export", "argilla", review_data, "--out", tmp_path / "b", "--api-url", url,
                 "--api-key-env", "NOTOS_TEST_NO_SUCH_VARIABLE")
    assert result.returncode == 2 and "--api-key-env" in result.stderr


def test_import_rejects_records_of_other_data(cli, review_data, tmp_path):
    bad = tmp_path / "records.json"
    bad.write_text(json.dumps([{"id": "nope", "fields": {"prompt": "x"}, "metadata": {}, "suggestions": {},
                                "responses": {}, "vectors": {}, "status": "pending", "_server_id": None}]))
    result = cli("import", "argilla", bad, "--data", review_data)
    assert result.returncode == 2 and "'nope'" in result.stderr and result.stderr.count("\n") == 1
    bad.write_text("{not json")
    result = cli("import", "argilla", bad, "--data", review_data)
    assert result.returncode == 2 and "not an Argilla records export" in result.stderr
