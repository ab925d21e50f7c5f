"""Reading UltraFeedback records, the generic form and the completions table into one table
(`notos.data.records`)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from notos.data.completions import schema_for
from notos.data.records import (
    detect_format,
    normalize,
    prompt_ids,
    read_completions,
    read_raw,
)
from notos.data.tables import write_table
from notos.errors import DataError


def uf_records():
    """Two prompts in the published shape, spelled the ways real files spell them."""
    return [
        {"instruction": "Name a prime.", "source": "flan_v2", "models": ["m-a", "m-b"], "completions": [
            {"model": "m-a", "principle": "honesty", "custom_system_prompt": "Be honest.", "response": "7",
             "annotations": {
                 "instruction-following": {"Rating": "5", "Rationale": "follows"},
                 "honesty": {"Rating": "N/A", "Rationale": "no uncertainty to express"},
                 "truthfulness": {"Type": ["0"], "Rationale": "no hallucination", "Rating": "4",
                                  "Rationale For Rating": "correct"},
                 "helpfulness": {"Type": ["1", "2"], "Rationale": "clear", "Rating": "3",
                                 "Rationale For Rating": "terse"}},
             "critique": "Good.", "overall_score": 9.0, "fine-grained_score": 4.0},
            {"model": "m-b", "principle": "helpfulness", "custom_system_prompt": "Help.", "response": "9",
             "annotations": {
                 "instruction_following": {"Rating": "2", "Rationale": "answers"},
                 "honesty": {"Rating": " 1 ", "Rationale": "confidently wrong"},
                 "truthfulness": {"Type": ["1"], "Rationale": "factual error", "Rating": "1",
                                  "rationale_for_rating": "9 is not prime"},
                 "helpfulness": {"Type": ["0"], "Rationale": "wrong", "Rating": "1",
                                 "Rationale For Rating": "misleading"}},
             "critique": "Wrong.", "overall_score": 2.5, "fine-grained_score": 1.25},
        ]},
        {"instruction": "Say hi.", "source": "ultrachat", "models": ["m-c"], "completions": [
            {"model": None, "response": "hi", "annotations": {
                "instruction_following": {"Rating": "4", "Rationale": "ok"},
                "honesty": {"Rating": "n/a", "Rationale": "-"},
                "truthfulness": {"Rating": None, "Rationale": None, "Error": "judge gave no rating"},
                "helpfulness": {"Rating": "5", "Rationale For Rating": "friendly"}},
             "critique": None, "overall_score": None},
        ]},
    ]


def test_ultrafeedback_records_become_one_row_per_completion():
    c = read_completions(uf_records())
    assert c.aspects == ["instruction_following", "honesty", "truthfulness", "helpfulness"]
    assert c.table.schema == schema_for(c.aspects)
    rows = c.table.to_pylist()
    assert [(r["prompt_id"], r["completion_index"], r["response"]) for r in rows] == [("0", 0, "7"), ("0", 1, "9"), ("1", 0, "hi")]
    assert [r["prompt"] for r in rows] == ["Name a prime.", "Name a prime.", "Say hi."]
    assert [r["source"] for r in rows] == ["flan_v2", "flan_v2", "ultrachat"]
    # A completion without its own model takes it from the record's `models` list.
    assert [r["model"] for r in rows] == ["m-a", "m-b", "m-c"]
    assert [r["overall_score"] for r in rows] == [9.0, 2.5, None]
    assert [r["critique"] for r in rows] == ["Good.", "Wrong.", None]
    # instruction-following and instruction_following are one aspect.
    assert [r["rating_instruction_following"] for r in rows] == [5.0, 2.0, 4.0]
    assert [r["rationale_instruction_following"] for r in rows] == ["follows", "answers", "ok"]
    # N/A (any case) is a null rating with na set; " 1 " is 1.
    assert [(r["rating_honesty"], r["na_honesty"]) for r in rows] == [(None, True), (1.0, False), (None, True)]
    # A rating the judge did not give is null and not N/A.
    assert [(r["rating_truthfulness"], r["na_truthfulness"]) for r in rows] == [(4.0, False), (1.0, False), (None, False)]
    # Typed aspects keep the rating's rationale, not the type's, whichever way it is spelled.
    assert [r["rationale_truthfulness"] for r in rows] == ["correct", "9 is not prime", None]
    assert [r["rationale_helpfulness"] for r in rows] == ["terse", "misleading", "friendly"]


def test_prompt_id_is_row_id_then_prompt_id_then_id_then_position():
    records = uf_records()
    assert prompt_ids(pa.Table.from_pylist(records)).to_pylist() == ["0", "1"]
    for column in ("id", "prompt_id", "row_id"):
        for k, record in enumerate(records):
            record[column] = f"{column}-{k}"
        raw = pa.Table.from_pylist(records)
        assert prompt_ids(raw).to_pylist() == [f"{column}-0", f"{column}-1"]
        assert normalize(raw).table.column("prompt_id").to_pylist() == [f"{column}-0", f"{column}-0", f"{column}-1"]
    # An integer id is used as text; a null id falls back to the row position.
    raw = pa.table({"id": [17, None], "prompt": ["a", "b"], "responses": [["x"], ["y"]]})
    assert prompt_ids(raw).to_pylist() == ["17", "1"]


def test_duplicate_ids_are_refused():
    raw = pa.table({"id": ["p", "p"], "prompt": ["a", "b"], "responses": [["x"], ["y"]]})
    with pytest.raises(DataError, match=r"data.jsonl: column 'id' holds duplicate ids \(e.g. 'p'\)"):
        normalize(raw, origin="data.jsonl")


@pytest.mark.parametrize("bad", ["6", "0", "good", "3/5", "-1"])
def test_a_bad_rating_is_a_one_line_error_naming_file_row_and_aspect(tmp_path, bad):
    records = uf_records()
    records[0]["id"], records[1]["id"] = "first", "second"
    records[1]["completions"][0]["annotations"]["helpfulness"]["Rating"] = bad
    path = tmp_path / "uf.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(DataError) as caught:
        read_completions(path)
    assert str(caught.value) == (f"{path}: row 2 (prompt_id 'second'), completion 0, aspect 'helpfulness': "
                                 f"rating '{bad}' is not 1-5 or N/A")


def test_numeric_ratings_are_read_and_range_checked():
    def records(second):
        return [{"instruction": "q", "completions": [
            {"response": "a", "annotations": {"honesty": {"Rating": 4}}},
            {"response": "b", "annotations": {"honesty": {"Rating": second}}}]}]

    assert read_completions(records(1)).table.column("rating_honesty").to_pylist() == [4.0, 1.0]
    with pytest.raises(DataError, match=r"^input: row 1 \(prompt_id '0'\), completion 1, aspect 'honesty': rating 7 is"):
        read_completions(records(7))


def test_generic_form_with_a_scores_struct_or_scores_columns():
    rows = [
        {"prompt": "p1", "source": "mine", "models": ["a", "b", "c"], "responses": ["r1", "r2", "r3"],
         "scores": {"helpfulness": [8.5, 2, None], "Clarity": [1, 1, 0]}},
        {"prompt": "p2", "source": None, "models": ["a"], "responses": ["r4"],
         "scores": {"helpfulness": [3], "Clarity": None}},
    ]
    c = read_completions(rows)
    assert c.aspects == ["helpfulness", "clarity"]  # criteria, in the order given, names normalized
    got = c.table.select(["prompt_id", "completion_index", "model", "response", "rating_helpfulness", "rating_clarity",
                          "na_helpfulness", "overall_score"]).to_pylist()
    assert got == [
        {"prompt_id": "0", "completion_index": 0, "model": "a", "response": "r1", "rating_helpfulness": 8.5,
         "rating_clarity": 1.0, "na_helpfulness": False, "overall_score": None},
        {"prompt_id": "0", "completion_index": 1, "model": "b", "response": "r2", "rating_helpfulness": 2.0,
         "rating_clarity": 1.0, "na_helpfulness": False, "overall_score": None},
        {"prompt_id": "0", "completion_index": 2, "model": "c", "response": "r3", "rating_helpfulness": None,
         "rating_clarity": 0.0, "na_helpfulness": False, "overall_score": None},
        {"prompt_id": "1", "completion_index": 0, "model": "a", "response": "r4", "rating_helpfulness": 3.0,
         "rating_clarity": None, "na_helpfulness": False, "overall_score": None},
    ]
    # The same data as scores_<criterion> columns reads the same (scores outside 1-5 allowed).
    flat = pa.table({"prompt": ["p1", "p2"], "source": ["mine", None], "models": [["a", "b", "c"], ["a"]],
                     "responses": [["r1", "r2", "r3"], ["r4"]], "scores_helpfulness": [[8.5, 2, None], [3]],
                     "scores_Clarity": [[1, 1, 0], None]})
    assert detect_format(flat) == "generic"
    assert normalize(flat).table.equals(c.table)


def test_generic_scores_must_match_the_responses():
    raw = pa.table({"prompt": ["p1", "p2"], "responses": [["a", "b"], ["c", "d"]], "scores_quality": [[1, 2], [3]]})
    with pytest.raises(DataError, match=r"^in.jsonl: row 2 \(prompt_id '1'\): 'scores_quality' has 1 scores for 2 responses$"):
        normalize(raw, origin="in.jsonl")
    raw = pa.table({"prompt": ["p"], "responses": [["a"]], "scores_quality": [["high"]]})
    with pytest.raises(DataError, match="scores_quality"):
        normalize(raw, origin="in.jsonl")
    with pytest.raises(DataError, match=r"^in.jsonl: column 'responses' is string, expected a list of texts$"):
        normalize(pa.table({"prompt": ["p"], "responses": ["a"]}), origin="in.jsonl")


def test_jsonl_json_and_parquet_give_equal_tables(tmp_path):
    records = uf_records()
    (tmp_path / "uf.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "uf.json").write_text(json.dumps(records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "uf.parquet")
    tables = [read_completions(tmp_path / name).table for name in ("uf.jsonl", "uf.json", "uf.parquet")]
    assert tables[0].num_rows == 3
    assert tables[0].equals(tables[1]) and tables[0].equals(tables[2])
    assert tables[0].equals(read_completions(records).table)


def test_an_unknown_shape_names_the_file_and_its_columns(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(DataError) as caught:
        read_completions(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a known preference-data shape (columns: question, answer)")
    assert "\n" not in message
    with pytest.raises(DataError, match="unknown format 'zephyr'"):
        read_completions(uf_records(), format="zephyr")
    # Asking for a shape the data does not have names the missing column.
    with pytest.raises(DataError, match=r"^input: format 'ultrafeedback' needs column 'completions' \(columns: prompt, responses\)$"):
        read_completions([{"prompt": "p", "responses": ["a"]}], format="ultrafeedback")


def test_folders_of_parts_and_run_folders(tmp_path):
    records = uf_records()
    leaf = tmp_path / "run" / "data" / "records"
    leaf.mkdir(parents=True)
    # Parts are read in numeric order; the leaf's _notos.json is not data.
    pq.write_table(pa.Table.from_pylist(records[1:]), leaf / "part-10.parquet")
    pq.write_table(pa.Table.from_pylist(records[:1]), leaf / "part-9.parquet")
    (leaf / "_notos.json").write_text("{}")
    from_leaf = read_completions(leaf)
    assert from_leaf.table.column("prompt").to_pylist() == ["Name a prime.", "Name a prime.", "Say hi."]
    (tmp_path / "run" / "manifest.json").write_text(json.dumps({"leaves": {"records": "data/records"}}))
    assert read_completions(tmp_path / "run").table.equals(from_leaf.table)
    (tmp_path / "run" / "manifest.json").write_text(json.dumps({"leaves": {"records": "data/records", "stats": "data/stats"}}))
    with pytest.raises(DataError, match=r"run has leaves records, stats; pass one of them"):
        read_raw(tmp_path / "run")
    import datasets  # a saved `datasets` folder, its selection honoured

    datasets.Dataset.from_list(records).select([1]).save_to_disk(str(tmp_path / "saved"))
    assert read_completions(tmp_path / "saved").table.column("prompt").to_pylist() == ["Say hi."]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no Parquet files"):
        read_raw(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file"):
        read_raw(tmp_path / "missing.jsonl")


def test_completions_table_reads_as_itself_so_tools_chain(tmp_path):
    c = read_completions(uf_records())
    assert detect_format(c.table) == "completions"
    again = normalize(c.table)
    assert again.aspects == c.aspects and again.table.equals(c.table)
    paths = write_table(c.table, tmp_path / "out")
    assert [p.name for p in paths] == ["data.parquet", "data.jsonl"]
    assert read_completions(tmp_path / "out" / "data.parquet").table.equals(c.table)
    assert read_completions(tmp_path / "out" / "data.jsonl").table.equals(c.table)
    # prompt_ids of a completions table: one per row.
    assert prompt_ids(c.table).to_pylist() == ["0", "0", "1"]
    # A completions table with fewer columns is filled in: na_* False, the rest null.
    slim = c.table.select(["prompt_id", "completion_index", "response", "rating_honesty"])
    filled = normalize(slim)
    assert filled.aspects == ["honesty"]
    assert filled.table.column("na_honesty").to_pylist() == [False, False, False]
    assert filled.table.column("model").to_pylist() == [None, None, None]


def test_choosing_aspects():
    c = read_completions(uf_records(), aspects=["helpfulness", "instruction-following"])
    assert c.aspects == ["helpfulness", "instruction_following"]
    assert "rating_honesty" not in c.table.column_names
    with pytest.raises(DataError, match=r"no aspect 'harmlessness' in the data \(aspects: instruction_following, honesty"):
        read_completions(uf_records(), aspects=["harmlessness"])


def test_prompts_without_completions_give_no_rows():
    records = uf_records() + [{"instruction": "empty", "completions": []}, {"instruction": "none", "completions": None}]
    c = read_completions(records)
    assert c.table.column("prompt_id").to_pylist() == ["0", "0", "1"]
    assert c.num_prompts == 2


def test_unreadable_files_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(uf_records()[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"broken.jsonl: line 2 is not valid JSON"):
        read_raw(broken)
    mixed = tmp_path / "mixed.jsonl"  # one field a string in one row, a number in the next
    mixed.write_text('{"prompt": "a", "responses": ["x"]}\n{"prompt": 5, "responses": ["y"]}\n')
    with pytest.raises(DataError, match=r"mixed.jsonl: rows do not share one type per field"):
        read_raw(mixed)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"data.csv: unknown file type '.csv'"):
        read_raw(tmp_path / "data.csv")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"bad.parquet: not a readable Parquet file"):
        read_raw(tmp_path / "bad.parquet")



# --- what notos's own stages write ---------------------------------------------------------------

def rated_rows():
    """The rating step's columns as a run leaf holds them (quickstart: one aspect, bare names)."""
    return [
        {"row_id": "qs-1", "_error": None, "instruction": "Name a colour.", "n_words": 3,
         "generations": ["red", "sky", "blue"], "generation_models": ["m", "m", "m"],
         "ratings": [5, None, 2], "ratings_expected": [4.6, None, 2.2], "rationales": ["apt", None, "ok"],
         "rating_model": "judge"},
        {"row_id": "qs-2", "_error": None, "instruction": "Say hi.", "n_words": 2,
         "generations": ["hi", "hello"], "generation_models": ["m", "n"], "ratings": [3, 4],
         "ratings_expected": [3.1, 3.9], "rationales": [None, None], "rating_model": "judge"},
    ]


def test_rated_generations_read_as_one_row_per_generation():
    raw = pa.Table.from_pylist(rated_rows())
    assert detect_format(raw) == "rated"
    c = normalize(raw)
    assert c.aspects == ["rating"]  # a bare `ratings` column names no aspect: `rating` unless the run says
    rows = c.table.to_pylist()
    assert [(r["prompt_id"], r["completion_index"], r["response"]) for r in rows] == [
        ("qs-1", 0, "red"), ("qs-1", 1, "sky"), ("qs-1", 2, "blue"), ("qs-2", 0, "hi"), ("qs-2", 1, "hello")]
    assert [r["model"] for r in rows] == ["m", "m", "m", "m", "n"]
    # The rating, not its expectation; an unrated generation stays unrated (null, not N/A).
    assert [r["rating_rating"] for r in rows] == [5.0, None, 2.0, 3.0, 4.0]
    assert not any(r["na_rating"] for r in rows)
    assert [r["rationale_rating"] for r in rows] == ["apt", None, "ok", None, None]


def test_several_aspects_and_a_critique_are_read_and_expectations_are_not_aspects():
    rows = [{"instruction": "Name a colour.", "generations": ["red", "sky"],
             "ratings_honesty": [5, 1], "ratings_expected_honesty": [4.8, 1.2], "rationales_honesty": ["sure", "no"],
             "ratings_helpfulness": [4, 2], "ratings_expected_helpfulness": [3.9, 2.1],
             "critiques": ["good", "wrong"], "overall_scores": [9.0, 2.0]}]
    c = read_completions(rows)
    assert c.aspects == ["honesty", "helpfulness"]
    table = c.table.to_pylist()
    assert [r["rating_honesty"] for r in table] == [5.0, 1.0] and [r["rating_helpfulness"] for r in table] == [4.0, 2.0]
    assert [r["rationale_honesty"] for r in table] == ["sure", "no"]
    assert [(r["critique"], r["overall_score"]) for r in table] == [("good", 9.0), ("wrong", 2.0)]
    assert [r["prompt_id"] for r in table] == ["0", "0"]


def test_a_rating_out_of_range_names_the_prompt_and_aspect():
    rows = rated_rows()
    rows[1]["ratings"] = [3, 9]
    with pytest.raises(DataError, match=r"prompt_id 'qs-2', generation 1, aspect 'rating': rating 9.0 is not 1-5"):
        read_completions(rows)


def test_one_answer_per_prompt_and_pairs_say_where_they_belong():
    with pytest.raises(DataError, match=r"SFT data: train on it with `notos train sft"):
        read_completions([{"instruction": "hi", "generation": "hello"}])
    with pytest.raises(DataError, match=r"preference pairs already: train on them with `notos train dpo"):
        read_completions([{"prompt": "hi", "chosen": "hello", "rejected": "go"}])


def test_the_quickstart_run_folder_and_its_audit_folder_read_as_completions(llm_server, cli, tmp_path):
    """A real run of the quickstart recipe (every LLM at the loopback server), read as it is; the
    aspect is the one its pipeline.yaml rated; an audit folder reads as the data it audited."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"instruction": f"tell me a fact about the number {i}"}) + "\n" for i in range(4)))
    run = tmp_path / "qs"
    done = cli("run", "quickstart", "--input", prompts, "--out", run, "--no-progress", "--llm-base-url", llm_server.base_url,
               timeout=300)
    assert done.returncode == 0, done.stderr
    c = read_completions(run)
    assert c.aspects == ["overall_rating"]
    assert c.table.num_rows == 12 and c.num_prompts == 4
    assert c.table.column("rating_overall_rating").null_count == 0
    # An audit folder as `notos curate audit` leaves it: its flags in data.parquet, the data it
    # audited named in config.json (tests/test_stage_chain.py runs the real command).
    audit = tmp_path / "audit"
    audit.mkdir()
    pq.write_table(pa.table({"prompt_id": ["x"], "completion_index": [0], "flags": [["missing_rating"]]}),
                   audit / "data.parquet")
    (audit / "config.json").write_text(json.dumps({"tool": "notos curate", "command": "audit", "input": str(run)}))
    assert read_completions(audit).table.equals(c.table)
    (tmp_path / "moved").mkdir()
    run.rename(tmp_path / "moved" / "qs")
    with pytest.raises(DataError, match=r"audit: an audit folder holds flags, not the data, and the data it audited .* is gone"):
        read_completions(audit)
