"""Decontamination: benchmark files, normalization, the three tests (source, exact, n-gram) and the
overlap figure, on hand-built cases and on the real MT-Bench questions."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from notos.curate.decontaminate import (
    BenchmarkItem,
    decontaminate,
    find_contamination,
    normalize,
    read_benchmark,
)
from notos.data.completions import completions_from_rows
from notos.errors import NotosError


def words(count: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


def completions(prompts: list[tuple[str, str, str | None]]):
    """Two completions per (prompt_id, prompt, source)."""
    rows = [{"prompt_id": pid, "prompt": text, "source": source, "completion_index": k, "response": f"answer {k}"}
            for pid, text, source in prompts for k in range(2)]
    return completions_from_rows(rows)


# ---------------------------------------------------------------------------- normalize

def test_normalize_casefolds_nfkc_strips_punctuation_and_collapses_whitespace():
    assert normalize("  Straße, Ｆｕｌｌ-width\tTEXT!!  don't\u00a0stop\n") == "strasse full width text don t stop"
    assert normalize("Café — 100% «sure»?") == "café 100 sure"
    assert normalize("?!...") == ""
    assert normalize("") == ""


# ---------------------------------------------------------------------------- hand-built matching

def test_overlap_is_the_share_of_the_benchmark_items_ngrams_found():
    item = BenchmarkItem("b", "b:1", words(15))  # 15 words -> 3 distinct 13-grams
    prompts = [
        "please " + words(15) + " thanks",   # all 3 grams, inside a longer prompt
        words(14),                           # w0..w13: grams starting at 0 and 1 -> 2 of 3
        words(13),                           # w0..w12: 1 of 3
        words(12) + " x w13 w14",            # w12 replaced: no 13-gram survives
    ]
    out = find_contamination(prompts, None, [item])
    assert out.column("contaminated").to_pylist() == [True, True, True, False]
    assert out.column("reason").to_pylist() == ["ngram", "ngram", "ngram", None]
    assert out.column("overlap").to_pylist() == [1.0, pytest.approx(2 / 3), pytest.approx(1 / 3), None]
    assert out.column("benchmark_id").to_pylist() == ["b:1", "b:1", "b:1", None]


def test_threshold_needs_that_share_of_ngrams():
    item = BenchmarkItem("b", "b:1", words(15))
    prompts = [words(14), words(13)]  # overlaps 2/3 and 1/3
    assert find_contamination(prompts, None, [item], threshold=0.6).column("contaminated").to_pylist() == [True, False]
    assert find_contamination(prompts, None, [item], threshold=0.7).column("contaminated").to_pylist() == [False, False]
    # threshold 1.0: only a full copy; an exact match always counts
    assert find_contamination([words(15), words(14)], None, [item], threshold=1.0).column("reason").to_pylist() == \
        ["exact", None]


def test_best_matching_item_wins_and_ties_go_to_the_first_item():
    first = BenchmarkItem("b", "b:1", words(26))            # 14 grams
    second = BenchmarkItem("b", "b:2", words(14))           # 2 grams, both inside first
    out = find_contamination(["intro " + words(14) + " outro"], None, [first, second])
    # first: 2 of 14 grams found; second: 2 of 2 -> second
    assert out.column("benchmark_id").to_pylist() == ["b:2"]
    assert out.column("overlap").to_pylist() == [1.0]
    twin = BenchmarkItem("c", "c:1", words(14))
    out = find_contamination(["intro " + words(14) + " outro"], None, [second, twin])
    assert out.column("benchmark").to_pylist() == ["b"]


def test_short_texts_are_one_gram_so_short_items_match_only_whole():
    short = BenchmarkItem("b", "b:1", "Rewrite your previous response.")  # 4 words < 13
    out = find_contamination(
        ["rewrite your previous response", "Please rewrite your previous response and make it shorter."],
        None, [short])
    assert out.column("reason").to_pylist() == ["exact", None]
    # a smaller n than the text length makes it an ordinary n-gram again
    out = find_contamination(["Please rewrite your previous response and make it shorter."], None, [short], ngram=3)
    assert out.column("overlap").to_pylist() == [1.0]
    # a short prompt whose words open a long item is not a copy of it
    assert find_contamination([words(5)], None, [BenchmarkItem("b", "b:2", words(20))]).column(
        "contaminated").to_pylist() == [False]


def test_source_names_match_case_and_separator_insensitively():
    prompts = ["q1", "q2", "q3", "q4", "q5"]
    sources = ["truthful_qa", "TruthfulQA", "truthful-qa", "truthful_qa_extra", None]
    out = find_contamination(prompts, sources, [BenchmarkItem("b", "b:1", "unrelated text")])
    assert out.column("reason").to_pylist() == ["source", "source", "source", None, None]
    assert out.column("benchmark").to_pylist() == [None] * 5
    none = find_contamination(prompts, sources, [BenchmarkItem("b", "b:1", "x")], sources_to_drop=())
    assert not any(none.column("contaminated").to_pylist())


def test_exact_match_after_normalization_beats_ngram_and_source_beats_both():
    item = BenchmarkItem("b", "b:7", "How many brothers does David have, if he has three sisters?")
    out = find_contamination(["HOW many brothers does   David have if he has three sisters",
                              "how many brothers does david have if he has three sisters"],
                             pa.array(["ultrachat", "truthful_qa"]), [item])
    assert out.column("reason").to_pylist() == ["exact", "source"]
    assert out.column("benchmark_id").to_pylist() == ["b:7", "b:7"]  # a source removal names the text match too
    assert out.column("overlap").to_pylist() == [1.0, 1.0]


def test_bad_options_give_one_line_errors():
    item = [BenchmarkItem("b", "b:1", "x")]
    for kwargs, word in (({"ngram": 0}, "ngram"), ({"threshold": 1.5}, "threshold"), ({"ngram": 2.5}, "ngram")):
        with pytest.raises(NotosError, match=word) as err:
            find_contamination(["a"], None, item, **kwargs)
        assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------- benchmark files

def test_read_text_jsonl_json_parquet_and_named_files(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("First prompt\n\n  Second prompt  \n")
    assert read_benchmark(text) == [BenchmarkItem("mine", "mine:1", "First prompt"),
                                    BenchmarkItem("mine", "mine:3", "Second prompt")]
    jsonl = tmp_path / "qa.jsonl"
    jsonl.write_text(json.dumps({"id": "x9", "question": "Why?"}) + "\n" + json.dumps({"question": "How?"}) + "\n")
    assert read_benchmark([jsonl]) == [BenchmarkItem("qa", "qa:x9", "Why?"), BenchmarkItem("qa", "qa:2", "How?")]
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": "Name three actors.", "output": "..."}]))
    assert read_benchmark(alpaca) == [BenchmarkItem("alpaca", "alpaca:1", "Name three actors.")]
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": ["P one", None, "P two"], "text": ["ignored"] * 3}), parquet)
    assert [i.text for i in read_benchmark({"bench": parquet})] == ["P one", "P two"]  # `prompt` before `text`
    assert read_benchmark({"bench": parquet})[1].item_id == "bench:3"
    arena = tmp_path / "arena" / "question.jsonl"
    arena.parent.mkdir()
    arena.write_text(json.dumps({"question_id": "a1", "turns": [{"content": "Hard one"}]}) + "\n")
    assert read_benchmark(arena) == [BenchmarkItem("arena", "arena:a1:turn1", "Hard one")]


@pytest.mark.parametrize("name, content, words_in_message", [
    ("cols.jsonl", '{"foo": 1, "bar": "x"}\n', ["cols.jsonl", "foo, bar"]),
    ("turns.jsonl", '{"question_id": 1, "turns": "not a list"}\n', ["turns.jsonl", "row 1", "turns"]),
    ("num.jsonl", '{"prompt": "ok"}\n{"prompt": 12}\n', ["num.jsonl", "row 2", "prompt"]),
    ("empty.txt", "\n\n", ["empty.txt", "blank"]),
    ("blank.jsonl", '{"prompt": ""}\n', ["blank.jsonl", "no benchmark prompts"]),
    ("bad.xml", "<a/>", ["bad.xml", ".xml"]),
    ("broken.jsonl", "{not json\n", ["broken.jsonl", "line 1"]),
])
def test_bad_benchmark_files_give_one_line_errors(tmp_path, name, content, words_in_message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(NotosError) as err:
        read_benchmark(path)
    message = str(err.value)
    assert "\n" not in message
    for word in words_in_message:
        assert word in message


def test_missing_benchmark_file_and_no_files(tmp_path):
    with pytest.raises(NotosError, match="absent.jsonl: no such"):
        read_benchmark(tmp_path / "absent.jsonl")
    with pytest.raises(NotosError, match="no benchmark files"):
        read_benchmark([])


# ---------------------------------------------------------------------------- the real MT-Bench

@pytest.fixture
def mt_bench(shared_data):
    path = shared_data / "mt_bench" / "question.jsonl"
    questions = {q["question_id"]: q["turns"] for q in map(json.loads, path.read_text().splitlines())}
    return path, questions


def test_mt_bench_file_gives_both_turns_of_80_questions(mt_bench):
    path, questions = mt_bench
    items = read_benchmark(path)
    assert len(items) == 160
    assert items[0] == BenchmarkItem("mt_bench", "mt_bench:81:turn1", questions[81][0])
    assert items[1].item_id == "mt_bench:81:turn2"
    assert {i.benchmark for i in items} == {"mt_bench"}


def test_alpaca_eval_instructions(shared_data):
    items = read_benchmark(shared_data / "alpaca_eval" / "notus-7b-v1_outputs.json")
    assert len(items) == 805
    assert items[0].text == "What are the names of some famous actors that started their careers on Broadway?"
    assert items[0].item_id == "notus-7b-v1_outputs:1"


def test_planted_copies_of_mt_bench_questions_are_caught(mt_bench):
    path, q = mt_bench
    # 84 turn 1 has 33 words (21 13-grams); "persuasive" (word 3) and "concise" (word 33) changed
    # leave the grams starting at words 4..20: 17 of 21.
    light = q[84][0].replace("persuasive", "convincing").replace("Please be concise.", "Please be brief.")
    # 86 turn 1 (26 words): bustling (7th), sounds (15th) and reader (26th) replaced, so every
    # 13-word window holds a change.
    rewritten = q[86][0].replace("bustling", "busy").replace("sounds", "noises").replace("reader", "audience")
    prompts = [
        ("verbatim", q[81][0], "sharegpt"),
        ("recased", "DAVID has three sisters; each of them has ONE brother -- how many brothers does David have",
         "ultrachat"),
        ("embedded", "I need help with my homework. " + q[82][0] + " Thank you so much in advance!", "sharegpt"),
        ("light", light, "evol_instruct"),
        ("rewritten", rewritten, "evol_instruct"),
        ("truthful", "What happens to you if you eat watermelon seeds?", "truthful_qa"),
        ("short-turn", q[82][1], "sharegpt"),  # "Take a moment to evaluate and critique your own response."
        ("short-inside", "Here is my essay about dogs. " + q[81][1] + " Also fix the spelling.", "sharegpt"),
        ("clean-1", "Write a travel blog post about a trip to Japan.", "ultrachat"),
        ("clean-2", "Explain how the gears on a bicycle work to a ten year old who loves riding.", "flan_v2"),
    ]
    c = completions(prompts)
    kept, removals = decontaminate(c, [path])
    got = {r["prompt_id"]: (r["reason"], r["benchmark_id"], r["overlap"]) for r in removals.to_pylist()}
    assert got == {
        "verbatim": ("exact", "mt_bench:81:turn1", 1.0),
        "recased": ("exact", "mt_bench:104:turn1", 1.0),
        "embedded": ("ngram", "mt_bench:82:turn1", 1.0),
        "light": ("ngram", "mt_bench:84:turn1", pytest.approx(17 / 21)),
        "truthful": ("source", None, None),
        "short-turn": ("exact", "mt_bench:82:turn2", 1.0),
    }
    assert removals.column_names == ["prompt_id", "prompt", "source", "reason", "benchmark", "benchmark_id",
                                     "benchmark_text", "overlap"]
    assert set(removals.column("benchmark").to_pylist()) == {"mt_bench", None}
    # the matched text as an excerpt: 82 turn 1 is 250 characters, cut to 200
    assert removals.filter(pc.equal(removals.column("prompt_id"), "embedded")).column(
        "benchmark_text").to_pylist() == [q[82][0][:199] + "…"]
    assert removals.filter(pc.equal(removals.column("prompt_id"), "recased")).column(
        "benchmark_text").to_pylist() == [q[104][0]]
    # every completion of a removed prompt goes, every completion of a kept one stays
    assert kept.table.column("prompt_id").to_pylist() == [p for p in ["rewritten", "short-inside", "clean-1", "clean-2"]
                                                          for _ in range(2)]
    assert kept.aspects == c.aspects

    # The rewrite keeps no 13-gram but keeps 5-grams: words 1-6, 8-14 and 16-25 survive,
    # 2 + 3 + 6 = 11 of the question's 22 5-grams.
    found = find_contamination([rewritten], None, read_benchmark(path), ngram=5)
    assert found.column("benchmark_id").to_pylist() == ["mt_bench:86:turn1"]
    assert found.column("overlap").to_pylist() == [pytest.approx(11 / 22)]

    # a stricter threshold keeps the lightly edited copy, not the pasted one
    _, strict = decontaminate(c, [path], threshold=0.9)
    assert "light" not in strict.column("prompt_id").to_pylist()
    assert "embedded" in strict.column("prompt_id").to_pylist()


def test_decontaminate_with_nothing_to_remove_returns_the_input_rows():
    c = completions([("a", "Hello there", None), ("b", "General Kenobi", "sharegpt")])
    kept, removals = decontaminate(c, [BenchmarkItem("b", "b:1", "Something else entirely")])
    assert kept.table.equals(c.table)
    assert removals.num_rows == 0
    assert removals.schema.field("overlap").type == pa.float64()
