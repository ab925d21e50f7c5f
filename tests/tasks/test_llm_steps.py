"""The one runner of every LLM step (notos.tasks.llm_steps): a step declared the way its
docstring says, run against the loopback server; and the option schema of every shipped LLM
step read from its factory's signature."""

import inspect

import pytest

import notos.tasks as tasks
from notos.errors import GraphError
from notos.llms.spec import get_llm
from notos.pipeline import from_rows, load_run, run
from notos.tasks.llm_steps import Ask, LLMTask, drop_rows, lists, llm_step, options_of


def server(llm_server, model="m"):
    return {"backend": "openai", "base_url": llm_server.base_url, "model": model, "max_retries": 0}


# A step written as the runner's docstring says: "Answer to: <text>" is what the server replies.
def build(row, *, text_column, **_):
    text = row[text_column]
    return "nothing to summarize" if not text.strip() else [Ask([{"role": "user", "content": text}])]


def parse(answer, **_):
    reply = answer.texts[0]
    words = reply.removeprefix("Answer to: ").split()
    if "[odd]" in reply:
        return {"summary": None, "summary_error": "no summary in the reply", "summary_raw": reply}
    if "[boom]" in reply:
        raise ValueError("the parser met something it never saw")
    return {"summary": " ".join(words[:2]), "summary_error": None, "summary_raw": reply}


SUMMARY = LLMTask("summary", build=build, parse=parse, model_column="summary_model")


def summary(llm="embedded", text_column="text", max_new_tokens=256, temperature=0.0, *, name="summary", **settings):
    options = options_of(summary, locals())
    return llm_step(SUMMARY, name, options, settings, inputs={text_column: "str"},
                    outputs=("summary", "summary_error", "summary_raw", "summary_model"))


def rows_of(*texts):
    return [{"row_id": f"r{i}", "text": t} for i, t in enumerate(texts)]


def test_a_declared_step_fails_only_its_own_rows(llm_server, tmp_path):
    step = summary(llm=server(llm_server), temperature=0.3, name="sum")
    assert step.options == {"llm": server(llm_server), "text_column": "text", "max_new_tokens": 256, "temperature": 0.3}
    result = run(from_rows(rows=rows_of("one two three", "[500] down", "   ", "[odd] reply", "[boom] x")) >> step,
                 tmp_path / "r", progress=False)
    rows = {r["row_id"]: r for r in load_run(tmp_path / "r")["sum"].to_list()}
    assert rows["r0"]["summary"] == "one two" and rows["r0"]["summary_model"] == "m" and rows["r0"]["_error"] is None
    assert rows["r1"]["_error"] == "sum: HTTP 500 internal failure" and rows["r1"]["summary"] is None
    assert rows["r2"]["_error"] == "sum: nothing to summarize"  # refused before any request
    # An answer the parser cannot read keeps its raw text and the reason; the row does not fail.
    assert rows["r3"]["summary"] is None and rows["r3"]["summary_error"] == "no summary in the reply"
    assert rows["r3"]["summary_raw"] == "Answer to: [odd] reply" and rows["r3"]["_error"] is None
    assert rows["r4"]["_error"] == "sum: ValueError: the parser met something it never saw"
    assert len(llm_server.requests) == 4 and result.stats["sum"]["rows_failed"] == 3
    assert {b["temperature"] for b in llm_server.requests} == {0.3}  # the option, once, into every request
    assert all(b["max_tokens"] == 256 for b in llm_server.requests)


def test_the_backend_checked_when_the_step_is_built_is_the_one_that_runs(llm_server, tmp_path):
    spec = server(llm_server, model="built-once")
    step = summary(llm=spec, name="sum")
    checked = get_llm(spec)
    run(from_rows(rows=rows_of("a b", "c d")) >> step, tmp_path / "r", progress=False)
    assert checked.answered == 2


def test_several_requests_per_row_children_rounds_and_a_finish(llm_server, tmp_path):
    """The hooks a step may add: lists for several requests, new rows, rounds, dropping rows."""
    def build_words(row, **_):
        return [Ask([{"role": "user", "content": w}], key=k) for k, w in enumerate(row["text"].split())]

    def parse_word(answer, *, key, **_):
        return {"echo": answer.texts[0], "position": key}

    def children(parsed, *, row, **_):
        return "no words" if not parsed else [{"word": p["echo"]} for p in parsed]

    def count(row, **_):
        return [] if row["rounds_done"] >= 2 else [Ask([{"role": "user", "content": row["text"]}])]

    def drop_short(rows, **_):
        return drop_rows(rows, [r for r in rows if len(r["text"]) < 4])

    per_word = LLMTask("words", build=build_words, parse=parse_word, combine=lists, model_column="m")
    split = LLMTask("split", build=build_words, parse=parse_word, combine=children, model_column="m")
    rounds = LLMTask("rounds", build=count, parse=lambda answer, *, row, **_: {"rounds_done": row["rounds_done"] + 1},
                     prepare=lambda rows, **_: [{**r, "rounds_done": 0} for r in rows], rounds=lambda **_: 3,
                     finish=drop_short, model_column="m")
    options = {"llm": server(llm_server), "max_new_tokens": 8, "temperature": 0.0}
    steps = [llm_step(task, task.type_name, dict(options), {}, inputs={"text": "str"}, outputs=("x",))
             for task in (per_word, split, rounds)]
    source = from_rows(rows=rows_of("alpha beta", "abc"))
    source >> steps
    result = run(source, tmp_path / "r", progress=False)
    out = load_run(tmp_path / "r")
    words = {r["row_id"]: r for r in out["words"].to_list()}
    assert words["r0"]["echo"] == ["Answer to: alpha", "Answer to: beta"] and words["r0"]["position"] == [0, 1]
    assert [(r["row_id"], r["word"]) for r in out["split"].to_list()] == [
        ("r0.0", "Answer to: alpha"), ("r0.1", "Answer to: beta"), ("r1.0", "Answer to: abc")]
    assert [(r["row_id"], r["rounds_done"]) for r in out["rounds"].to_list()] == [("r0", 2)]
    # 3 + 3 requests for the words, 2 rows x 2 rounds (the third round asks nothing).
    assert len(llm_server.requests) == 10
    # The dropped row's tokens were spent all the same: the step counts all 4 requests (the
    # server counts words: "alpha beta" -> "Answer to: alpha beta" is 2 + 4).
    assert result.stats["rounds"]["rows_out"] == 1 and result.stats["rounds"]["tokens"] == 2 * (2 + 4) + 2 * (1 + 3)


def test_drop_rows_keeps_the_spent_tokens():
    rows = [{"row_id": "a", "_tokens": 3}, {"row_id": "b", "_tokens": 5}, {"row_id": "c", "_tokens": 7}]
    kept = drop_rows(rows, [rows[0], rows[2]])
    assert kept == [{"row_id": "b", "_tokens": 15}]
    assert drop_rows(rows[:1], rows[:1]) == []


LLM_STEPS = ["text_generation", "ultrafeedback_rating", "critique", "llm_judge", "pairwise_judge", "self_instruct",
             "lamini", "evol_instruct", "quality_filter"]
NORMALIZED = {"pool_seed": lambda name: name, "aspects": lambda name: ["overall-rating"]}
REQUIRED = {"lamini": {"topics": ["astronomy"]}}


@pytest.mark.parametrize("type_name", LLM_STEPS)
def test_the_signature_is_the_option_schema(type_name):
    """Every option a step carries (its fingerprint, its pipeline.yaml entry) is a parameter of
    its factory, with the factory's default: nothing is listed twice."""
    factory = getattr(tasks, type_name)
    step = factory(name="s", **REQUIRED.get(type_name, {}))
    params = {k: p.default for k, p in inspect.signature(factory).parameters.items() if k not in ("name", "settings")}
    assert list(step.options) == list(params) and step.type_name == type_name
    for key, default in params.items():
        expected = REQUIRED.get(type_name, {}).get(key, NORMALIZED[key]("s") if key in NORMALIZED else default)
        assert step.options[key] == expected, key


def test_generation_options_are_checked_by_one_rule_for_every_step():
    for factory in (tasks.text_generation, tasks.critique, tasks.llm_judge, tasks.quality_filter):
        with pytest.raises(GraphError, match="step 's': option 'max_new_tokens' has a bad value 0"):
            factory(name="s", max_new_tokens=0)
    with pytest.raises(GraphError, match="option 'seed' must be an integer"):
        tasks.text_generation(name="s", seed="7")

