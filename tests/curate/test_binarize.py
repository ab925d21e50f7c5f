"""Binarization strategies on hand-built prompts whose pairs are worked out by hand."""

import random

import pyarrow as pa
import pytest

from notos.curate.binarize import (
    STRATEGIES,
    binarize,
    binarize_stats,
    completion_scores,
)
from notos.data.completions import completions_from_rows
from notos.errors import DataError, NotosError

NA = "N/A"
ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")


def completions(prompts: dict, source="src"):
    """{prompt_id: [(overall_score, [4 aspect ratings, NA or None allowed]) per completion]}."""
    rows = []
    for pid, items in prompts.items():
        for k, (overall, ratings) in enumerate(items):
            row = {"prompt_id": pid, "prompt": f"prompt {pid}", "source": source, "completion_index": k,
                   "model": f"model-{k}", "response": f"{pid}/{k}", "overall_score": overall}
            for aspect, rating in zip(ASPECTS, ratings or [None] * 4):
                row[f"rating_{aspect}"] = None if rating == NA else rating
                row[f"na_{aspect}"] = rating == NA
            rows.append(row)
    return completions_from_rows(rows)


def same(score):
    return [score] * 4


def choices(pairs):
    return sorted(zip(pairs.column("prompt_id").to_pylist(), pairs.column("index_chosen").to_pylist(),
                      pairs.column("index_rejected").to_pylist()))


def test_pairs_are_trl_conversations_with_provenance():
    c = completions({"p": [(3.0, same(2)), (8.0, same(5))]}, source="flan_v2")
    pairs = binarize(c, "overall")
    assert pairs.to_pylist() == [{
        "prompt_id": "p", "prompt": [{"role": "user", "content": "prompt p"}],
        "chosen": [{"role": "assistant", "content": "p/1"}], "rejected": [{"role": "assistant", "content": "p/0"}],
        "score_chosen": 8.0, "score_rejected": 3.0, "model_chosen": "model-1", "model_rejected": "model-0",
        "index_chosen": 1, "index_rejected": 0, "source": "flan_v2", "strategy": "overall",
    }]
    assert set(STRATEGIES) == {"overall", "mean", "best-worst", "all-pairs"}


def test_overall_never_pairs_equal_scores_and_draws_among_tied_best():
    # Best 9 twice, then 5 twice: chosen is one of the 9s, rejected one of the 5s, never 9 vs 9.
    c = completions({"p": [(9.0, None), (9.0, None), (5.0, None), (5.0, None)]})
    seen = set()
    for seed in range(40):
        (pair,) = choices(binarize(c, "overall", seed=seed))
        assert pair[1] in (0, 1) and pair[2] in (2, 3)
        seen.add(pair[1:])
    assert seen == {(0, 2), (0, 3), (1, 2), (1, 3)}  # every combination drawn over 40 seeds


def test_rejected_is_drawn_among_all_strictly_lower_completions():
    c = completions({f"p{i}": [(10.0, None), (7.0, None), (4.0, None), (1.0, None)] for i in range(300)})
    pairs = binarize(c, "overall")
    assert set(pairs.column("index_chosen").to_pylist()) == {0}
    counts = [pairs.column("index_rejected").to_pylist().count(k) for k in (1, 2, 3)]
    assert sum(counts) == 300 and min(counts) > 70  # about 100 each: uniform, not always the worst


def test_all_equal_and_single_completion_prompts_give_no_pair():
    c = completions({"tied": [(7.0, same(4))] * 3, "single": [(9.0, same(5))],
                     "ok": [(7.0, same(4)), (2.0, same(1))]})
    for strategy in STRATEGIES:
        pairs = binarize(c, strategy)
        assert choices(pairs) == [("ok", 0, 1)], strategy
        stats = binarize_stats(pairs)
        assert stats["prompts"] == 3 and stats["prompts_paired"] == 1 and stats["pairs"] == 1
        assert stats["dropped"] == {"fewer_than_2_scores": 1, "all_tied": 1, "below_margin": 0}


def test_mean_leaves_na_out_and_a_completion_with_only_na_has_no_score():
    c = completions({
        # a: mean of 5, 3, 4 = 4 (N/A left out, not counted as 0); b: 4; c: mean of 5, 1 = 3.
        "p": [(1.0, [5, NA, 3, 4]), (1.0, [4, 4, 4, 4]), (9.0, [5, 1, NA, None])],
        # Only one completion has a score: no pair.
        "q": [(5.0, [NA, NA, NA, NA]), (4.0, [3, 3, 3, 3])],
    })
    assert completion_scores(c, "mean").tolist()[:4] == [4.0, 4.0, 3.0, pytest.approx(float("nan"), nan_ok=True)]
    seen = set()
    for seed in range(20):
        pairs = binarize(c, "mean", seed=seed)
        (pair,) = choices(pairs)
        assert pair[0] == "p" and pair[1] in (0, 1) and pair[2] == 2  # a and b tie for best; c is lower
        seen.add(pair[1])
        assert pairs.column("score_chosen").to_pylist() == [4.0] and pairs.column("score_rejected").to_pylist() == [3.0]
    assert seen == {0, 1}
    stats = binarize_stats(binarize(c, "mean"))
    assert stats["completions_without_score"] == 1
    assert stats["dropped"]["fewer_than_2_scores"] == 1
    # The other way round on overall_score: c (9) beats a and b (1 each).
    assert choices(binarize(c, "overall"))[0][:2] == ("p", 2)


def test_mean_over_chosen_aspects():
    c = completions({"p": [(None, [1, 5, 5, 5]), (None, [5, 1, 1, 1])]})
    assert choices(binarize(c, "mean")) == [("p", 0, 1)]  # 4 vs 2
    assert choices(binarize(c, "mean", aspects=["instruction-following"])) == [("p", 1, 0)]  # 5 vs 1
    assert binarize_stats(binarize(c, "mean", aspects=["instruction_following"]))["aspects"] == ["instruction_following"]
    with pytest.raises(NotosError, match="no aspect 'fluency'"):
        binarize(c, "mean", aspects=["fluency"])


def test_ten_versus_one_critique_score_and_aspect_mean_disagree():
    # Notus's case: the critique gave 10 to a response its aspect ratings tear apart.
    c = completions({"p": [(10.0, [1, 1, 1, 1]), (6.0, [5, 5, 4, 4]), (4.0, [3, 3, 3, 3])]})
    assert choices(binarize(c, "overall", seed=1))[0][1] == 0
    assert choices(binarize(c, "mean", seed=1))[0][1] == 1
    assert choices(binarize(c, "best-worst")) == [("p", 1, 0)]  # mean 4.5 vs 1


def test_best_worst_draws_among_tied_best_and_tied_worst():
    c = completions({"p": [(None, same(1)), (None, same(5)), (None, same(3)), (None, same(5)), (None, same(1))]})
    seen = set()
    for seed in range(40):
        (pair,) = choices(binarize(c, "best-worst", seed=seed))
        assert pair[1] in (1, 3) and pair[2] in (0, 4)
        seen.add(pair[1:])
    assert seen == {(1, 0), (1, 4), (3, 0), (3, 4)}


def test_all_pairs_and_margins():
    c = completions({"p": [(None, same(5)), (None, same(3)), (None, same(3)), (None, same(1))]})
    all_pairs = [("p", 0, 1), ("p", 0, 2), ("p", 0, 3), ("p", 1, 3), ("p", 2, 3)]  # 3 vs 3 never pairs
    assert choices(binarize(c, "all-pairs")) == all_pairs
    assert choices(binarize(c, "all-pairs", min_margin=2)) == all_pairs  # gaps 2, 2, 4, 2, 2
    assert choices(binarize(c, "all-pairs", min_margin=2.5)) == [("p", 0, 3)]
    pairs = binarize(c, "all-pairs", min_margin=5)
    assert pairs.num_rows == 0 and binarize_stats(pairs)["dropped"]["below_margin"] == 1
    assert choices(binarize(c, "best-worst", min_margin=4)) == [("p", 0, 3)]
    assert binarize(c, "best-worst", min_margin=4.5).num_rows == 0


def test_min_margin_drops_close_pairs_of_single_pair_strategies():
    c = completions({"close": [(9.0, None), (8.0, None)], "far": [(9.0, None), (5.0, None)]})
    pairs = binarize(c, "overall", min_margin=2)
    assert choices(pairs) == [("far", 0, 1)]
    assert binarize_stats(pairs)["dropped"] == {"fewer_than_2_scores": 0, "all_tied": 0, "below_margin": 1}
    assert len(choices(binarize(c, "overall", min_margin=1))) == 2  # a gap equal to the margin is kept


def test_seeded_and_independent_of_row_order():
    prompts = {f"p{i}": [(float(s), None) for s in scores]
               for i, scores in enumerate([[9, 9, 5, 5, 5], [7, 3, 3, 3], [4, 4, 4, 1, 1]] * 30)}
    c = completions(prompts)
    for strategy in STRATEGIES:
        first = binarize(c, strategy, score="overall", seed=3)
        assert first.equals(binarize(c, strategy, score="overall", seed=3))
        rows = c.table.to_pylist()
        random.Random(0).shuffle(rows)
        shuffled = completions_from_rows(rows)
        assert choices(binarize(shuffled, strategy, score="overall", seed=3)) == choices(first), strategy
    # Another seed draws other ties somewhere.
    assert choices(binarize(c, "overall", seed=3)) != choices(binarize(c, "overall", seed=4))


def test_pairs_follow_the_prompts_first_appearance():
    c = completions({"z": [(2.0, None), (1.0, None)], "a": [(2.0, None), (1.0, None)], "m": [(2.0, None), (1.0, None)]})
    assert binarize(c, "overall").column("prompt_id").to_pylist() == ["z", "a", "m"]


def test_bad_options_and_empty_input():
    c = completions({"p": [(None, same(5)), (None, same(3))]})
    with pytest.raises(NotosError, match="unknown binarize strategy 'zephyr'"):
        binarize(c, "zephyr")
    with pytest.raises(NotosError, match="min_margin must be >= 0"):
        binarize(c, "mean", min_margin=-1)
    with pytest.raises(DataError, match="no completion has an overall_score"):
        binarize(c, "overall")
    with pytest.raises(NotosError, match="unknown score 'median'"):
        binarize(c, "best-worst", score="median")
    empty = completions_from_rows([])
    pairs = binarize(empty, "mean")
    assert pairs.num_rows == 0 and "chosen" in pairs.column_names
    assert binarize_stats(pairs)["prompts"] == 0
    with pytest.raises(NotosError, match="no binarize stats"):
        binarize_stats(pa.table({"x": [1]}))


def test_stats_travel_with_the_pairs_parquet(tmp_path):
    import pyarrow.parquet as pq

    from notos.data.tables import write_table

    c = completions({"p": [(9.0, None), (2.0, None)], "q": [(1.0, None)]})
    write_table(binarize(c, "overall", seed=7), tmp_path, formats=("parquet",))
    stats = binarize_stats(pq.read_table(tmp_path / "data.parquet"))
    assert (stats["strategy"], stats["seed"], stats["pairs"], stats["dropped"]["fewer_than_2_scores"]) == ("overall", 7, 1, 1)
