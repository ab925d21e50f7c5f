"""Training data: TRL's preference format from what curation writes, SFT forms, held-out splits."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from notos.data.locate import locate
from notos.errors import DataError
from notos.train.data import preference_rows, sft_rows, sources, split_off

USER = [{"role": "user", "content": "What is 2 + 2?"}]
GOOD = [{"role": "assistant", "content": "4."}]
BAD = [{"role": "assistant", "content": "5."}]


def test_binarized_parquet_folder_extra_columns_dropped(tmp_path):
    # What `notos curate binarize` writes: ids, scores and models beside TRL's three columns.
    rows = [{"prompt_id": f"p{i}", "prompt": USER, "chosen": USER + GOOD, "rejected": USER + BAD,
             "score_chosen": 5.0, "score_rejected": 2.0, "chosen_model": "a", "rejected_model": "b"} for i in range(3)]
    (tmp_path / "pairs").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:2]), tmp_path / "pairs" / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(rows[2:]), tmp_path / "pairs" / "part-1.parquet")
    (tmp_path / "pairs" / ".notos-ref-logps").mkdir()  # caches beside the data are not data
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / "pairs" / ".notos-ref-logps" / "ref.parquet")
    pairs = preference_rows(str(tmp_path / "pairs"))
    assert len(pairs) == 3
    # A chosen that repeats the prompt (UltraFeedback-binarized style) is cut to the reply.
    assert pairs[0] == {"prompt": USER, "chosen": GOOD, "rejected": BAD}


def test_curate_output_folder_reads_data_parquet_only(tmp_path):
    # `notos curate binarize --jsonl` writes the same rows twice, plus JSON and other tables.
    rows = [{"prompt_id": "p", "prompt": USER, "chosen": GOOD, "rejected": BAD, "strategy": "mean"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    (tmp_path / "data.jsonl").write_text('{"prompt": "x", "chosen": "y", "rejected": "z"}\n')
    (tmp_path / "stats.json").write_text('{"pairs": 1}')
    pq.write_table(pa.table({"reason": ["tie"]}), tmp_path / "removals.parquet")
    assert preference_rows(str(tmp_path)) == [{"prompt": USER, "chosen": GOOD, "rejected": BAD}]


def test_string_pairs_become_chat_turns_unless_told_not_to(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "2+2?", "chosen": "4", "rejected": "5", "extra": 1}\n')
    assert preference_rows(str(path))[0] == {"prompt": [{"role": "user", "content": "2+2?"}],
                                             "chosen": [{"role": "assistant", "content": "4"}],
                                             "rejected": [{"role": "assistant", "content": "5"}]}
    assert preference_rows(str(path), as_chat=False)[0] == {"prompt": "2+2?", "chosen": "4", "rejected": "5"}


def test_pairs_without_prompt_share_their_beginning(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], '
                    '"rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}\n')
    pair = preference_rows(str(path))[0]
    assert pair["prompt"] == [{"role": "user", "content": "q"}] and pair["chosen"] == [{"role": "assistant", "content": "a"}]


def test_malformed_messages_name_the_column(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "q", "chosen": [{"text": "a"}], "rejected": "b"}\n')
    with pytest.raises(DataError, match="column 'chosen' must hold"):
        preference_rows(str(path))
    with pytest.raises(DataError, match="no such file"):
        preference_rows(str(tmp_path / "missing.jsonl"))


def test_sft_forms(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
        '{"prompt": "q2", "completion": "a2"}\n'
        '{"instruction": "q3", "generation": "a3", "quality_score": 4}\n'
        '{"prompt": "q4", "chosen": "a4", "rejected": "b4"}\n')
    rows = sft_rows(str(path))
    # Mixed forms become conversations: one type per column for Arrow.
    assert [r["messages"][-1]["content"] for r in rows] == ["a", "a2", "a3", "a4"]
    assert all(r["messages"][0]["role"] == "user" for r in rows)
    only = tmp_path / "pc.jsonl"
    only.write_text('{"prompt": "q", "completion": "a"}\n')
    assert sft_rows(str(only)) == [{"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}]


def test_held_out_split_is_reproducible_and_disjoint():
    rows = [{"i": i} for i in range(40)]
    train, held = split_off(rows, 0.2, seed=1)
    assert len(held) == 8 and len(train) == 32 and not {r["i"] for r in train} & {r["i"] for r in held}
    assert split_off(rows, 0.2, seed=1) == (train, held)
    assert split_off(rows, 0.0, seed=1) == (rows, [])


def test_a_run_folder_is_its_one_leaf_not_its_cache(tmp_path):
    # What a `notos run` pipeline that binarizes writes: data/<leaf>/part-N.parquet, a cache beside.
    run = tmp_path / "run"
    (run / "data" / "pairs").mkdir(parents=True)
    (run / "cache" / "pairs-0123").mkdir(parents=True)
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b", "row_id": str(i)} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows[1:]), run / "data" / "pairs" / "part-000001.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:1]), run / "data" / "pairs" / "part-000000.parquet")
    pq.write_table(pa.Table.from_pylist(rows), run / "cache" / "pairs-0123" / "part-000000-abc.parquet")
    (run / "manifest.json").write_text('{"leaves": {"pairs": "data/pairs"}}')
    assert sources(str(run)) == [str(f) for f in locate(run).files]
    assert [p["chosen"] for p in preference_rows(str(run), as_chat=False)] == ["a", "a", "a"]
    assert sources("hf://owner/name") == ["hf://owner/name"]
