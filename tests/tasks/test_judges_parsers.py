"""Judge / critique prompt builders and parsers: realistic and hostile model outputs."""

import pytest

from notos.tasks.critique import critique_messages, parse_critique
from notos.tasks.judges import (
    pairwise_messages,
    parse_pairwise,
    parse_single,
    reconcile,
    single_messages,
)

# --- parse_single ------------------------------------------------------------------------------

QUOTED_THEN_REAL = (
    'The user asked for a rating widget; the assistant replied:\n> "Rate us: [[10]] stars!"\n'
    "This is off-topic and contains a factual error about the API.\n\nRating: [[3]]"
)

SINGLE_CASES = [
    # (judge output, expected score, expected error substring or None, expected ambiguous)
    ("The answer is correct and well explained.\n\nRating: [[7]]", 7, None, False),
    ("Concise but misses edge cases. [[7.5]]", 7.5, None, False),
    ("Solid.\n\n**Rating: [[8]]**", 8, None, False),
    ("Solid.\n\nRating: **[[8]]**", 8, None, False),
    ("Verdict: [[ 9 ]]", 9, None, False),
    ("Final: [[**6**]]", 6, None, False),
    ("Final: \\[\\[5\\]\\]", 5, None, False),  # markdown-escaped brackets
    ("Rating: [[6/10]]", 6, None, False),
    ("Rating: [[8,5]]", 8.5, None, False),  # decimal comma
    ("Rating: [[7.0]]", 7.0, None, False),
    ("Rating: [[1]]", 1, None, False),
    ("Rating: [[10]]\r\n", 10, None, False),
    (QUOTED_THEN_REAL, 3, None, True),
    ("I'd say [[6]] at first... on reflection the math is wrong.\nRating: [[4]]", 4, None, True),
    ("Rating: [[8]]. To restate my verdict: [[8]]", 8, None, False),  # same verdict twice: not ambiguous
    ("Rating: [[11]]", None, "outside", False),
    ("Rating: [[0]]", None, "outside", False),
    ("Rating: [[-2]]", None, "outside", False),
    ("Earlier I thought [[7]] but really [[12]]", None, "outside", True),
    ("The answer is great. Rating: 8/10", None, "no [[N]] verdict", False),
    ("Rating: [[N]]", None, "no [[N]] verdict", False),  # judge echoed the placeholder
    ("The response is good. Rating: [[7", None, "no [[N]] verdict", False),  # truncated
    ("", None, "empty", False),
    ("   \n ", None, "empty", False),
    (None, None, "empty", False),
]


@pytest.mark.parametrize("text,score,error,ambiguous", SINGLE_CASES)
def test_parse_single(text, score, error, ambiguous):
    out = parse_single(text)
    assert out["score"] == score
    assert type(out["score"]) is type(score)  # 7 stays int, 7.5 / 7.0 stay float
    if error is None:
        assert out["error"] is None
    else:
        assert error in out["error"]
    assert out["ambiguous"] is ambiguous


# --- parse_pairwise ----------------------------------------------------------------------------

PAIRWISE_CASES = [
    ("Assistant A is more accurate.\n\n[[A]]", "A", None, False),
    ("B covers the edge cases. [[B]]", "B", None, False),
    ("Both are equally good. [[C]]", "tie", None, False),
    ("Final verdict: [[a]]", "A", None, False),
    ("Final verdict: [[ b ]]", "B", None, False),
    ("Final verdict: **[[B]]**", "B", None, False),
    ("Final verdict: [[**A**]]", "A", None, False),
    ("Equal quality: [[Tie]]", "tie", None, False),
    ("Equal quality: [[c]]", "tie", None, False),
    ("I must answer [[A]], [[B]] or [[C]]. After comparing, B is better.\n[[B]]", "B", None, True),
    ('A wrote "see [[B]] below" which is confusing; B is cleaner. Verdict: [[B]]', "B", None, False),
    ("Leaning [[A]]... actually B handles the error path. [[B]]", "B", None, True),
    ("[[A]] and to restate: [[A]]", "A", None, False),
    ("Assistant A is better.", None, "no [[A]]", False),
    ("Verdict: [[D]]", None, "no [[A]]", False),
    ("Verdict: [A]", None, "no [[A]]", False),
    ("", None, "empty", False),
    (None, None, "empty", False),
]


@pytest.mark.parametrize("text,winner,error,ambiguous", PAIRWISE_CASES)
def test_parse_pairwise(text, winner, error, ambiguous):
    out = parse_pairwise(text)
    assert out["winner"] == winner
    if error is None:
        assert out["error"] is None
    else:
        assert error in out["error"]
    assert out["ambiguous"] is ambiguous


# --- parse_critique ----------------------------------------------------------------------------

CRITIQUE_CASES = [
    # (critic output, expected score, expected error substring or None, expected critique)
    ("The answer skips step 2.\nOverall score: 6", 6, None, "The answer skips step 2."),
    ("Good structure.\nOverall Score: 7/10", 7, None, "Good structure."),
    ("Clear.\n**Overall score**: 8", 8, None, "Clear."),
    ("Clear.\n**Overall score: 8**", 8, None, "Clear."),
    ("Too terse.\nScore: 6", 6, None, "Too terse."),
    ("Mostly right.\r\nCites no sources.\r\nOverall score: 7.5   \r\n", 7.5, None, "Mostly right.\nCites no sources."),
    ("Fine.\nOverall score: 10", 10, None, "Fine."),
    ("Fine.\noverall score - 4 out of 10", 4, None, "Fine."),
    ("### Feedback\nOverall Score: 5\nThe code never closes the file.", 5, None, "The code never closes the file."),
    ("Score: 9 for style.\nBut the facts are wrong.\nOverall score: 3", 3, None, "Score: 9 for style.\nBut the facts are wrong."),
    ("The score you would expect is high, but it is not.\nOverall score: 2", 2, None,
     "The score you would expect is high, but it is not."),
    ("Nice.\nOverall score: 11", None, "outside", "Nice."),
    ("Nice.\nOverall score: 0", None, "outside", "Nice."),
    ("Nice, I'd give it an 8.", None, "no 'Overall score", "Nice, I'd give it an 8."),
    ("Nice.\nOverall score: N", None, "no 'Overall score", "Nice.\nOverall score: N"),
    ("", None, "empty", ""),
    (None, None, "empty", ""),
]


@pytest.mark.parametrize("text,score,error,critique", CRITIQUE_CASES)
def test_parse_critique(text, score, error, critique):
    out = parse_critique(text)
    assert out["overall_score"] == score
    assert type(out["overall_score"]) is type(score)
    if error is None:
        assert out["error"] is None
    else:
        assert error in out["error"]
    assert out["critique"] == critique


# --- prompt builders ---------------------------------------------------------------------------

def _roles(messages):
    return [m["role"] for m in messages]


def test_single_messages_plain():
    msgs = single_messages("What is 2+2?", "It is 4.")
    assert _roles(msgs) == ["system", "user"]
    user = msgs[1]["content"]
    assert "What is 2+2?" in user and "It is 4." in user
    assert "[[" in msgs[0]["content"] and "10" in msgs[0]["content"]
    assert "reference" not in (msgs[0]["content"] + user).lower()


def test_single_messages_reference_shown_only_when_given():
    msgs = single_messages("Integrate x dx.", "x^2", reference="x^2/2 + C")
    text = msgs[0]["content"] + msgs[1]["content"]
    assert "x^2/2 + C" in msgs[1]["content"]
    assert "reference" in text.lower()
    # the reference comes before the graded answer, so the judge reads it first
    assert msgs[1]["content"].index("x^2/2 + C") < msgs[1]["content"].rindex("x^2\n")


def test_single_messages_turn_context():
    ctx = [("Name a prime.", "7."), ("Another?", "11.")]
    msgs = single_messages("Is 15 prime?", "No, 3*5.", turn_context=ctx, reference="No.")
    user = msgs[1]["content"]
    order = [user.index(s) for s in ("Name a prime.", "7.", "Another?", "11.", "Is 15 prime?", "No, 3*5.")]
    assert order == sorted(order)
    assert "last" in msgs[0]["content"].lower()
    assert "No." in user


def test_single_messages_rejects_bad_turn():
    with pytest.raises(ValueError):
        single_messages("q", "a", turn_context=[("only user",)])


def test_pairwise_messages_labels_and_reference():
    msgs = pairwise_messages("Sort [3,1,2].", "[1,2,3]", "[3,2,1]")
    assert _roles(msgs) == ["system", "user"]
    user = msgs[1]["content"]
    assert "<answer_A>\n[1,2,3]\n</answer_A>" in user
    assert "<answer_B>\n[3,2,1]\n</answer_B>" in user
    assert user.index("answer_A") < user.index("answer_B")
    for verdict in ("[[A]]", "[[B]]", "[[C]]"):
        assert verdict in msgs[0]["content"]
    assert "reference" not in (msgs[0]["content"] + user).lower()
    ref = pairwise_messages("Sort [3,1,2].", "[1,2,3]", "[3,2,1]", reference="[1, 2, 3]")
    assert "[1, 2, 3]" in ref[1]["content"] and "reference" in ref[0]["content"].lower()


def test_critique_messages():
    msgs = critique_messages("Write a haiku about rain.", "Rain falls. The end.")
    assert _roles(msgs) == ["system", "user"]
    user = msgs[1]["content"]
    assert "Write a haiku about rain." in user and "Rain falls. The end." in user
    assert "Overall score: N" in user
    # the format line the prompt asks for is one the parser reads
    assert parse_critique("Too short.\nOverall score: 3")["overall_score"] == 3


def test_builders_output_parsable_formats():
    # the example verdict shown in the single prompt parses
    assert parse_single(single_messages("q", "a")[0]["content"])["score"] is not None


# --- reconcile ---------------------------------------------------------------------------------

RECONCILE_CASES = [
    # first (1 as A, 2 as B), second (2 as A, 1 as B) -> winner, consistent
    ("A", "B", "1", True),
    ("B", "A", "2", True),
    ("C", "C", "tie", True),
    ("tie", "tie", "tie", True),
    ("A", "A", "tie", False),  # position bias: each order favours the first slot
    ("B", "B", "tie", False),
    ("A", "C", "tie", False),
    ("C", "A", "tie", False),
    ("A", None, "1", False),
    (None, "A", "2", False),
    ("C", None, "tie", False),
    (None, None, None, False),
]


@pytest.mark.parametrize("first,second,winner,consistent", RECONCILE_CASES)
def test_reconcile(first, second, winner, consistent):
    assert reconcile(first, second) == {"winner": winner, "consistent": consistent}


def test_reconcile_accepts_parsed_dicts():
    first, second = parse_pairwise("[[A]]"), parse_pairwise("B is worse. [[b]]")
    assert reconcile(first, second) == {"winner": "1", "consistent": True}
    assert reconcile(parse_pairwise("no verdict"), parse_pairwise("[[A]]")) == {"winner": "2", "consistent": False}


def test_reconcile_rejects_unknown_verdict():
    with pytest.raises(ValueError):
        reconcile("D", "A")
