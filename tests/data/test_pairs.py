"""Preference pairs without a prompt column: the prompt is what chosen and rejected share."""

import pytest

from notos.data.pairs import split_shared_prompt, to_pair

USER = {"role": "user", "content": "Name a colour."}
CASES = [
    ([USER, {"role": "assistant", "content": "Blue."}], [USER, {"role": "assistant", "content": "A car."}]),
    ("\n\nHuman: Name a colour.\n\nAssistant: Blue.", "\n\nHuman: Name a colour.\n\nAssistant: A car."),
    ("Q: two plus two? A: four", "Q: two plus two? A: five"),
]


@pytest.mark.parametrize("chosen, rejected", CASES)
def test_the_shared_start_is_the_prompt_as_trl_splits_it(chosen, rejected):
    trl_data_utils = pytest.importorskip("trl.data_utils")  # the train extra; CI installs it
    ours = split_shared_prompt(chosen, rejected)
    assert ours == trl_data_utils.extract_prompt({"chosen": chosen, "rejected": rejected})
    assert ours["prompt"] + ours["chosen"] == chosen and ours["prompt"] + ours["rejected"] == rejected


def test_a_pair_without_prompt_column_is_split():
    chosen, rejected = CASES[0]
    assert to_pair({"chosen": chosen, "rejected": rejected}, "pairs.jsonl") == {
        "prompt": [USER], "chosen": [chosen[1]], "rejected": [rejected[1]]}


def test_rated_responses_given_as_pairs_point_to_binarize():
    from notos.errors import DataError

    row = {"instruction": "Name a colour.", "generations": ["Blue.", "A car."], "ratings": [5, 1]}
    with pytest.raises(DataError) as caught:
        to_pair(row, "runs/qs/data/dataset/part-000000.parquet")
    message = str(caught.value)
    assert message.startswith("runs/qs/data/dataset/part-000000.parquet: no column 'chosen'")
    assert "column 'generations'" in message and "notos curate binarize DATA --out PAIRS" in message
    with pytest.raises(DataError) as plain:
        to_pair({"prompt": "hi", "chosen": "hello"}, "p.jsonl")
    assert "binarize" not in str(plain.value)  # a pair missing a side is not rated data
