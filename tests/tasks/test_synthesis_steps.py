"""Self-Instruct, LaMini, Evol-Instruct and system-prompt steps through the engine, against the
loopback server (its synthesis answers are described in fake_llm_server.py)."""

import logging
import re
import zlib
from collections import Counter

import pytest

from notos.errors import GraphError
from notos.pipeline import Pipeline, from_rows, load_run, run
from notos.tasks import text_generation
from notos.tasks.principles import ORCA_SYSTEM_MESSAGES, PRINCIPLES
from notos.tasks.synthesis import EVOL_IN_BREADTH, EVOL_IN_DEPTH, self_instruct_messages
from notos.tasks.synthesis_steps import evol_instruct, lamini, self_instruct, system_prompts

SUFFIX = " Answer in exactly three numbered steps and cite one example."
SEEDS = ["Explain how tides work.", "Write a haiku about winter.", "List three uses of vinegar.",
         "Plan a two-day trip to Lisbon.", "Summarize the causes of inflation.", "Translate 'good morning' to French."]


def synth(server):
    return {"backend": "openai", "base_url": server.base_url, "model": "synth", "max_retries": 0}


def seed_rows(texts=SEEDS):
    return [{"row_id": f"s{i}", "instruction": t} for i, t in enumerate(texts)]


def run_rows(rows, step, folder, **pipeline):
    result = run(Pipeline(from_rows(rows=rows) >> step, **pipeline), folder, progress=False)
    return result, load_run(folder)[step.name].to_list()


def prompt_of(body):
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]


def numbered(prompt):
    return re.findall(r"^\d+\. (.+)$", prompt.split("\n\n")[1], re.M)


# ---------------------------------------------------------------- Self-Instruct / LaMini

def test_self_instruct_makes_one_child_row_per_new_instruction(llm_server, tmp_path):
    step = self_instruct(llm=synth(llm_server), num_instructions=3, examples_per_prompt=3)
    result, rows = run_rows(seed_rows(), step, tmp_path / "r")
    assert len(rows) == 18 and len(llm_server.requests) == 6
    by_seed = {}
    for row in rows:
        parent, _, k = row["row_id"].rpartition(".")
        by_seed.setdefault(parent, []).append((int(k), row))
    assert sorted(by_seed) == [f"s{i}" for i in range(6)]
    prompts = {numbered(prompt_of(b))[0]: prompt_of(b) for b in llm_server.requests}
    for i, seed in enumerate(SEEDS):
        children = sorted(by_seed[f"s{i}"], key=lambda kr: kr[0])
        assert [k for k, _ in children] == [0, 1, 2]
        tag = zlib.crc32(prompts[seed].encode()) % 10_000  # the reply to this seed's own prompt
        assert [r["instruction"] for _, r in children] == [f"Describe subject {tag}-{k} in three short sentences." for k in (1, 2, 3)]
        for _, row in children:
            assert row["seed_instruction"] == seed and row["synthesis_method"] == "self_instruct"
            assert row["synthesis_model"] == "synth" and row["_error"] is None
    assert result.stats["self_instruct"]["tokens"] > 0 and result.stats["self_instruct"]["rows_out"] == 18


def test_each_prompt_shows_its_seed_and_other_seeds_picked_the_same_way_every_run(llm_server, tmp_path):
    for folder in ("a", "b"):
        run_rows(seed_rows(), self_instruct(llm=synth(llm_server), num_instructions=2, examples_per_prompt=3), tmp_path / folder)
    first, second = llm_server.requests[:6], llm_server.requests[6:]
    assert sorted(map(prompt_of, first)) == sorted(map(prompt_of, second))
    picks = []
    for body in first:
        examples = numbered(prompt_of(body))
        assert len(examples) == 3 and len(set(examples)) == 3 and set(examples) <= set(SEEDS)
        assert "Invent 2 new tasks" in prompt_of(body)
        picks.append(tuple(examples[1:]))
    assert sorted(p[0] for p in map(lambda b: numbered(prompt_of(b)), first)) == sorted(SEEDS)
    assert len(set(picks)) > 1  # not every seed is shown the same two neighbours


def test_new_instructions_that_repeat_a_seed_are_dropped(llm_server, tmp_path):
    # With one example per prompt, seed A's prompt (and so the server's reply) is known in advance:
    # put A's first future instruction into the batch as seed B.
    a = "Explain how tides work."
    tag = zlib.crc32(self_instruct_messages([a], 2)[0]["content"].encode()) % 10_000
    b = f"describe SUBJECT {tag}-1 in three short sentences"
    step = self_instruct(llm=synth(llm_server), num_instructions=2, examples_per_prompt=1)
    _, rows = run_rows(seed_rows([a, b]), step, tmp_path / "r")
    from_a = [r for r in rows if r["seed_instruction"] == a]
    assert [(r["row_id"], r["instruction"]) for r in from_a] == [("s0.0", f"Describe subject {tag}-2 in three short sentences.")]
    assert len([r for r in rows if r["seed_instruction"] == b]) == 2

    # When every new instruction repeats a seed, the seed row fails with the reason.
    tag = zlib.crc32(self_instruct_messages([a], 1)[0]["content"].encode()) % 10_000
    b = f"Describe subject {tag}-1 in three short sentences."
    step = self_instruct(llm=synth(llm_server), num_instructions=1, examples_per_prompt=1, name="one")
    _, rows = run_rows(seed_rows([a, b]), step, tmp_path / "r2")
    failed = [r for r in rows if r["_error"]]
    assert [(r["row_id"], r["_error"]) for r in failed] == [("s0", "one: all 1 new instructions repeat seed instructions")]


def test_a_reply_with_no_instructions_fails_its_row(llm_server, tmp_path, monkeypatch):
    import notos.tasks.synthesis_steps as steps

    # A model that ignores the format: here, one that answers with nothing at all.
    monkeypatch.setattr(steps, "self_instruct_messages", lambda examples, n, criteria=None: [
        {"role": "user", "content": f"[empty] {examples[0]}"}])
    _, rows = run_rows(seed_rows(SEEDS[:2]), self_instruct(llm=synth(llm_server)), tmp_path / "r")
    assert [r["row_id"] for r in rows] == ["s0", "s1"]
    assert all(r["_error"] == "self_instruct: the reply held no instructions: ''" for r in rows)


def test_a_failed_request_fails_only_its_seed_and_a_rerun_sends_nothing(llm_server, tmp_path):
    texts = ["Explain how tides work.", "[500] Describe a broken thing.", "Write a haiku about winter."]
    step = lambda: self_instruct(llm=synth(llm_server), num_instructions=2, examples_per_prompt=1)  # noqa: E731
    result, rows = run_rows(seed_rows(texts), step(), tmp_path / "r")
    failed = [r for r in rows if r["_error"]]
    assert [(r["row_id"], r["_error"]) for r in failed] == [("s1", "self_instruct: HTTP 500 internal failure")]
    assert sorted(r["row_id"] for r in rows if not r["_error"]) == ["s0.0", "s0.1", "s2.0", "s2.1"]
    assert result.stats["self_instruct"]["rows_failed"] == 1
    sent = len(llm_server.requests)
    _, again = run_rows(seed_rows(texts), step(), tmp_path / "r")
    assert sent == 3 and len(llm_server.requests) == 3 and again == rows


def test_lamini_steers_by_topics_from_the_option_or_a_column(llm_server, tmp_path):
    topics = ["astronomy", "cooking", "law", "music", "sailing"]
    step = lamini(llm=synth(llm_server), topics=topics, topics_per_prompt=2, num_instructions=2)
    _, rows = run_rows(seed_rows(SEEDS[:3]), step, tmp_path / "a")
    assert len(rows) == 6 and {r["synthesis_method"] for r in rows} == {"lamini"}
    for body in llm_server.requests:
        listed = re.search(r"about at least one of these topics: (.+)\. Vary", prompt_of(body)).group(1).split("; ")
        assert len(listed) == 2 and set(listed) <= set(topics) and "Write 2 new" in prompt_of(body)
    for row in rows:
        assert len(row["synthesis_topics"]) == 2 and row["instruction"].startswith("Describe subject")

    data = [{"row_id": "t0", "instruction": SEEDS[0], "topic": ["geology"]},
            {"row_id": "t1", "instruction": SEEDS[1], "topic": []}]
    step = lamini(llm=synth(llm_server), topics_column="topic", num_instructions=1, name="by_column")
    _, rows = run_rows(data, step, tmp_path / "b")
    assert [(r["row_id"], r["synthesis_topics"], r["_error"]) for r in rows] == [
        ("t0.0", ["geology"], None), ("t1", None, "by_column: column 'topic' holds no topics")]
    assert "these topics: geology." in prompt_of(llm_server.requests[-1]) and len(llm_server.requests) == 4


@pytest.mark.parametrize("factory, options, message", [
    (self_instruct, {"num_instructions": 0}, "option 'num_instructions'"),
    (self_instruct, {"examples_per_prompt": "3"}, "option 'examples_per_prompt'"),
    (self_instruct, {"seed": 1.5}, "option 'seed'"),
    (self_instruct, {"temperature": -1}, "option 'temperature'"),
    (self_instruct, {"llm": "gpt-4"}, "cannot read spec"),
    (lamini, {}, "option 'topics'"),
    (lamini, {"topics": ["a"], "topics_column": "t"}, "option 'topics'"),
    (lamini, {"topics": "cooking"}, "option 'topics' must be a non-empty list"),
    (lamini, {"topics": ["a"], "topics_per_prompt": 0}, "option 'topics_per_prompt'"),
])
def test_bad_synthesis_options(factory, options, message):
    with pytest.raises(GraphError, match=f"step 'x': .*{message}"):
        factory(name="x", **options)


# ---------------------------------------------------------------- Evol-Instruct

def test_two_rounds_evolve_the_evolved_instruction_the_same_way_every_run(llm_server, tmp_path):
    step = lambda: evol_instruct(llm=synth(llm_server), rounds=2)  # noqa: E731
    result, rows = run_rows(seed_rows(), step(), tmp_path / "a")
    _, again = run_rows(seed_rows(), step(), tmp_path / "b")
    assert len(llm_server.requests) == 24  # 6 rows x 2 rounds, twice
    assert [r["evol_methods"] for r in rows] == [r["evol_methods"] for r in again]
    for row, seed in zip(rows, SEEDS):
        assert row["original_instruction"] == seed
        assert row["evol_history"] == [seed + SUFFIX, seed + SUFFIX + SUFFIX]
        assert row["instruction"] == seed + SUFFIX + SUFFIX and row["evolution_error"] is None
        assert row["evol_model"] == "synth" and len(row["evol_methods"]) == 2
    used = [m for r in rows for m in r["evol_methods"]]
    assert set(used) <= set(EVOL_IN_DEPTH + EVOL_IN_BREADTH) and len(set(used)) > 1
    # Each request asked for the method recorded for its row and round.
    asked = Counter("created" if "#Created Prompt#:" in prompt_of(b) else "rewritten" for b in llm_server.requests[:12])
    assert asked["created"] == sum(m in EVOL_IN_BREADTH for m in used)
    assert result.stats["evol_instruct"]["tokens"] > 0


def test_methods_option_limits_and_is_checked(llm_server, tmp_path):
    run_rows(seed_rows(SEEDS[:3]), evol_instruct(llm=synth(llm_server), methods=["breadth"]), tmp_path / "r")
    assert all("#Created Prompt#:" in prompt_of(b) for b in llm_server.requests) and len(llm_server.requests) == 3
    with pytest.raises(GraphError, match="step 'e': option 'methods' has unknown method 'bogus'"):
        evol_instruct(name="e", methods=["deepen", "bogus"])
    with pytest.raises(GraphError, match="step 'e': option 'methods' must be 'all' or a non-empty list"):
        evol_instruct(name="e", methods="deepen")
    with pytest.raises(GraphError, match="step 'e': option 'rounds'"):
        evol_instruct(name="e", rounds=0)
    with pytest.raises(GraphError, match="step 'e': option 'keep_failed'"):
        evol_instruct(name="e", keep_failed="yes")


def test_failed_evolutions_are_dropped_and_logged(llm_server, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="notos")
    texts = ["Explain how tides work.", "[same] Keep this one as it is.", "Write a haiku about winter."]
    result, rows = run_rows(seed_rows(texts), evol_instruct(llm=synth(llm_server), rounds=2), tmp_path / "r")
    assert [r["row_id"] for r in rows] == ["s0", "s2"]
    assert len(llm_server.requests) == 5  # the failed row stops after its first round
    assert result.stats["evol_instruct"]["rows_out"] == 2 and result.stats["evol_instruct"]["rows_failed"] == 0
    assert "dropped 1 of 3 rows whose evolution failed (1 x evolution is identical to the original)" in caplog.text


def test_failed_evolutions_can_be_kept_flagged(llm_server, tmp_path):
    texts = ["Explain how tides work.", "[same] Keep this one as it is."]
    _, rows = run_rows(seed_rows(texts), evol_instruct(llm=synth(llm_server), rounds=2, keep_failed=True), tmp_path / "r")
    good, same = rows
    assert good["evolution_error"] is None and len(good["evol_history"]) == 2
    assert same["evolution_error"] == "evolution is identical to the original" and same["_error"] is None
    assert same["instruction"] == same["original_instruction"] == texts[1]
    assert same["evol_history"] == [] and len(same["evol_methods"]) == 1  # the method that failed


def test_a_failed_evol_request_fails_only_its_row_and_a_rerun_sends_nothing(llm_server, tmp_path):
    texts = ["Explain how tides work.", "[500] Describe a broken thing."]
    step = lambda: evol_instruct(llm=synth(llm_server), name="evolve")  # noqa: E731
    _, rows = run_rows(seed_rows(texts), step(), tmp_path / "r")
    assert rows[0]["instruction"] == texts[0] + SUFFIX and rows[0]["_error"] is None
    assert rows[1]["_error"] == "evolve: HTTP 500 internal failure" and rows[1]["instruction"] == texts[1]
    run_rows(seed_rows(texts), step(), tmp_path / "r")
    assert len(llm_server.requests) == 2


def test_synthesis_chain_resumes_without_new_requests(llm_server, tmp_path):
    def pipe():
        grow = self_instruct(llm=synth(llm_server), num_instructions=2, examples_per_prompt=2)
        evolve = evol_instruct(llm=synth(llm_server))
        return from_rows(rows=seed_rows(SEEDS[:4])) >> grow >> evolve

    run(Pipeline(pipe(), batch_size=2), tmp_path / "r", progress=False)
    rows = load_run(tmp_path / "r")["evol_instruct"].to_list()
    assert len(rows) == 8 and all(r["row_id"].rpartition(".")[0] in {"s0", "s1", "s2", "s3"} for r in rows)
    assert all(r["original_instruction"].startswith("Describe subject") and r["seed_instruction"] in SEEDS for r in rows)
    sent = len(llm_server.requests)
    run(Pipeline(pipe(), batch_size=2), tmp_path / "r", progress=False)
    assert sent == 12 and len(llm_server.requests) == 12
    assert load_run(tmp_path / "r")["evol_instruct"].to_list() == rows


# ---------------------------------------------------------------- system prompts

def many_rows(n=400):
    return [{"instruction": f"question number {i}"} for i in range(n)]


def test_principles_follow_the_weights_and_repeat_across_runs(tmp_path):
    step = lambda: system_prompts(weights={"helpfulness": 3, "honesty": 1}, seed=7)  # noqa: E731
    _, rows = run_rows(many_rows(), step(), tmp_path / "a")
    _, again = run_rows(many_rows(), step(), tmp_path / "b")
    assert [(r["row_id"], r["system_prompt"]) for r in rows] == [(r["row_id"], r["system_prompt"]) for r in again]
    counts = Counter(r["principle"] for r in rows)
    assert set(counts) == {"helpfulness", "honesty"} and 250 <= counts["helpfulness"] <= 350
    assert all(r["system_prompt"] in PRINCIPLES[r["principle"]] for r in rows)
    assert len({r["system_prompt"] for r in rows}) == 8  # every prompt of both principles is used
    _, other_seed = run_rows(many_rows(), system_prompts(weights={"helpfulness": 3, "honesty": 1}, seed=8), tmp_path / "c")
    assert [r["system_prompt"] for r in other_seed] != [r["system_prompt"] for r in rows]


def test_orca_pool_uses_every_message(tmp_path):
    _, rows = run_rows(many_rows(), system_prompts(pool="orca", system_prompt_column="system"), tmp_path / "r")
    counts = Counter(r["principle"] for r in rows)
    assert set(counts) == {f"orca-{i}" for i in range(len(ORCA_SYSTEM_MESSAGES))} and min(counts.values()) >= 25
    assert all(r["system"] == ORCA_SYSTEM_MESSAGES[int(r["principle"][5:])] for r in rows)


def test_text_generation_answers_under_each_rows_system_prompt(llm_server, tmp_path):
    answer = text_generation(llm=synth(llm_server), system_prompt_column="system_prompt", name="answer")
    run(from_rows(rows=many_rows(12)) >> system_prompts() >> answer, tmp_path / "r", progress=False)
    rows = {r["instruction"]: r for r in load_run(tmp_path / "r")["answer"].to_list()}
    assert len(llm_server.requests) == 12
    for body in llm_server.requests:
        system, user = body["messages"]
        assert system == {"role": "system", "content": rows[user["content"]]["system_prompt"]}
        assert rows[user["content"]]["generation"] == f"Answer to: {user['content']}"


@pytest.mark.parametrize("options, message", [
    ({"pool": "wizard"}, "option 'pool' must be one of principles, orca"),
    ({"weights": {"kindness": 1}}, r"option 'weights': unknown principle\(s\) \['kindness'\]"),
    ({"weights": {"honesty": 0}}, "option 'weights': principle weights must be non-negative and not all zero"),
    ({"weights": {"honesty": "high"}}, "option 'weights' must map principle names"),
    ({"pool": "orca", "weights": {"honesty": 1}}, "option 'weights' applies only to pool 'principles'"),
    ({"seed": "x"}, "option 'seed'"),
])
def test_bad_system_prompt_options(options, message):
    with pytest.raises(GraphError, match=f"step 'sp': {message}"):
        system_prompts(name="sp", **options)
