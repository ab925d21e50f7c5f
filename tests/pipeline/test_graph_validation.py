"""The graph is checked before any step runs; each error is one line naming step and column."""

import pytest

from notos.errors import GraphError
from notos.pipeline import Pipeline, from_rows, global_step, group_columns, keep_columns, rename_columns, sample_n, step


@step(inputs={"instruction": "str"}, outputs=["n_words"])
def count_words(row):
    return {"n_words": len(row["instruction"].split())}


@step(inputs={"n_words": "int"}, outputs=["long"])
def is_long(row):
    return {"long": row["n_words"] > 3}


@step(inputs=["instruction"], outputs=["answer"])
def answer(row, suffix="!"):
    return {"answer": row["instruction"] + suffix}


def rows(n=4):
    return from_rows([{"instruction": f"say hello number {i}"} for i in range(n)])


def test_valid_chain_reports_columns_after_each_step():
    src = rows()
    src >> count_words() >> is_long()
    columns = Pipeline(src).validate()
    assert list(columns["is_long"]) == ["row_id", "instruction", "n_words", "long"]


def test_missing_input_column_names_step_and_column():
    src = from_rows([{"prompt": "hi"}])
    src >> count_words()
    with pytest.raises(GraphError, match=r"step 'count_words' needs column 'instruction'.*prompt"):
        Pipeline(src).validate()


def test_column_removed_by_keep_is_missing_downstream():
    src = rows()
    src >> keep_columns(["instruction"]) >> is_long()
    with pytest.raises(GraphError, match="'is_long' needs column 'n_words'"):
        Pipeline(src).validate()


def test_rename_makes_column_available():
    src = from_rows([{"prompt": "a b c d e"}])
    src >> rename_columns({"prompt": "instruction"}) >> count_words()
    assert "n_words" in Pipeline(src).validate()["count_words"]


def test_wrong_column_type_is_caught_from_the_data():
    src = from_rows([{"instruction": 42}])
    src >> count_words()
    with pytest.raises(GraphError, match="step 'count_words': column 'instruction' holds int values, expected str"):
        Pipeline(src).validate()


def test_cycle_is_reported():
    src = rows()
    a, b = count_words(), answer()
    src >> a >> b
    b >> a  # closes a loop a -> b -> a
    with pytest.raises(GraphError, match="cycle"):
        Pipeline(src)


def test_duplicate_names():
    src = rows()
    src >> [answer(), answer()]
    with pytest.raises(GraphError, match="two steps are named 'answer'"):
        Pipeline(src)


def test_unconnected_step():
    src = rows()
    src >> count_words()
    loose = answer(name="loose")
    with pytest.raises(GraphError, match="step 'loose' is not connected"):
        Pipeline(src, loose)


def test_unknown_option_names_step_and_option():
    with pytest.raises(GraphError, match="step 'answer': unknown option 'sufix'"):
        answer(sufix="?")


def test_fan_in_column_clash_needs_group_columns():
    src = rows()
    src >> [answer(name="a1"), answer(name="a2")] >> count_words(name="after")
    with pytest.raises(GraphError, match="column 'answer' comes from both 'a1' and 'a2'.*group_columns"):
        Pipeline(src).validate()


def test_group_columns_requires_column_in_every_branch():
    src = rows()
    branches = [answer(name="a1"), count_words(name="c2")]
    src >> branches
    branches >> group_columns(["answer"])
    with pytest.raises(GraphError, match="'group_columns' needs column 'answer'"):
        Pipeline(src).validate()


def test_route_needs_enough_branches():
    src = rows()
    src >> sample_n(3) >> [answer(name="a1"), answer(name="a2")]
    with pytest.raises(GraphError, match="'sample_n': option 'n' is 3 but it has only 2 branches"):
        Pipeline(src).validate()


def test_factory_must_be_called():
    with pytest.raises(GraphError, match="call the step factory|call it"):
        rows() >> count_words


def test_joining_across_a_global_step_is_refused():
    @global_step()
    def everything(all_rows):
        return all_rows

    src = rows()
    g = everything()
    direct = answer(name="direct")
    src >> g >> count_words()
    src >> direct
    join = group_columns(["instruction"])
    [g.children[0], direct] >> join
    with pytest.raises(GraphError, match="joins branches that start from different sources or global steps"):
        Pipeline(src).validate()
