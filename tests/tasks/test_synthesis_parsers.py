"""Prompt builders and parsers for instruction synthesis: realistic and hostile model outputs."""

from collections import Counter

import pytest

from notos.tasks.synthesis import (
    DEFAULT_PRINCIPLE_WEIGHTS, EVOL_IN_BREADTH, EVOL_IN_DEPTH, ORCA_SYSTEM_MESSAGES, PRINCIPLES,
    evol_messages, evolution_failed, lamini_messages, orca_messages, parse_evolved,
    parse_instruction_list, parse_quality, pick_principle, pick_system_message, quality_messages,
    self_instruct_messages,
)

# ---------------------------------------------------------------- parse_instruction_list

LIST_CASES = [
    ("numbered_with_preamble",
     ("Here are 5 instructions:\n\n1. Write a haiku about autumn rain.\n2. Explain how vaccines train the immune system.\n"
     "3. Summarize the plot of Hamlet in three sentences."),
     ["Write a haiku about autumn rain.", "Explain how vaccines train the immune system.",
      "Summarize the plot of Hamlet in three sentences."]),
    ("paren_numbers_crlf",
     "1) Give three tips for better sleep.\r\n2) Convert 72 Fahrenheit to Celsius.\r\n\r\n3) Name the largest moon of Saturn.",
     ["Give three tips for better sleep.", "Convert 72 Fahrenheit to Celsius.", "Name the largest moon of Saturn."]),
    ("dash_and_star_bullets",
     "- Draft a polite email declining a meeting.\n* List the planets in order from the sun.",
     ["Draft a polite email declining a meeting.", "List the planets in order from the sun."]),
    ("markdown_bold_and_labels",
     "1. **Instruction:** Describe the water cycle to a child.\n2. **Write a limerick about a cat.**",
     ["Describe the water cycle to a child.", "Write a limerick about a cat."]),
    ("duplicates_case_insensitive",
     "1. Write a haiku about the sea.\n2. write a HAIKU about the sea\n3. Write a haiku about the sea!",
     ["Write a haiku about the sea."]),
    ("short_items_dropped",
     "1. Hello\n2. Poem please\n3. Explain why the sky looks blue.",
     ["Explain why the sky looks blue."]),
    ("nested_bullets_join_parent",
     "1. Plan a three-day trip with:\n   - a budget under $500\n   - two museum visits\n2. Describe how a bill becomes law.",
     ["Plan a three-day trip with: a budget under $500; two museum visits", "Describe how a bill becomes law."]),
    ("epilogue_dropped",
     ("Sure! Here you go:\n1. Outline a five-paragraph essay on climate policy.\n2. Solve 3x + 5 = 20 for x.\n"
     "I hope these help! Let me know if you need more."),
     ["Outline a five-paragraph essay on climate policy.", "Solve 3x + 5 = 20 for x."]),
    ("plain_lines_no_markers",
     "Here are some ideas:\nWrite a poem about the moon and tides\nList three uses of baking soda\n",
     ["Write a poem about the moon and tides", "List three uses of baking soda"]),
    ("quoted_items", '1. "Translate this sentence into Spanish: I love books."\n2. \u201cName five famous female scientists.\u201d',
     ["Translate this sentence into Spanish: I love books.", "Name five famous female scientists."]),
    ("heading_and_rule",
     "### New instructions\n---\n1. Compare cats and dogs as pets.\n2. Explain recursion with an example.\n---",
     ["Compare cats and dogs as pets.", "Explain recursion with an example."]),
    ("empty", "", []),
    ("only_preamble", "Here are 5 instructions:", []),
    ("indented_continuation",
     "1. Write a short story about a lighthouse keeper\n   who finds a message in a bottle.\n2. Explain what inflation is.",
     ["Write a short story about a lighthouse keeper who finds a message in a bottle.", "Explain what inflation is."]),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in LIST_CASES], ids=[c[0] for c in LIST_CASES])
def test_parse_instruction_list(text, expected):
    assert parse_instruction_list(text) == expected


def test_parse_instruction_list_max_items_after_dedupe():
    text = "1. Write a haiku about rain.\n2. write a haiku about rain\n3. Explain how tides work.\n4. Describe a busy market."
    assert parse_instruction_list(text, max_items=2) == ["Write a haiku about rain.", "Explain how tides work."]
    assert parse_instruction_list(None) == []


# ---------------------------------------------------------------- parse_evolved

EVOLVED_CASES = [
    ("hash_label", "#Rewritten Prompt#:\nExplain entanglement using a coin analogy.", "Explain entanglement using a coin analogy."),
    ("plain_label", "Rewritten Prompt: Sort a list of tuples by the second item.", "Sort a list of tuples by the second item."),
    ("bold_label_and_preamble", "Here is the rewritten prompt:\n**Rewritten Prompt:** Compare TCP and UDP for video calls.",
     "Compare TCP and UDP for video calls."),
    ("quotes", '"Describe the causes of the French Revolution in 200 words."',
     "Describe the causes of the French Revolution in 200 words."),
    ("fence_wrapping_everything", "```\nWrite a SQL query that returns the top 3 customers by revenue.\n```",
     "Write a SQL query that returns the top 3 customers by revenue."),
    ("inner_code_block_kept", "Fix the bug in this code:\n```python\nprint(1/0)\n```",
     "Fix the bug in this code:\n```python\nprint(1/0)\n```"),
    ("created_prompt_breadth", "#Created Prompt#:\nHow do lichens survive in Antarctica?", "How do lichens survive in Antarctica?"),
    ("trailing_explanation", "Rewritten Prompt: List 5 prime numbers above 100.\n\nThis rewritten prompt adds a range constraint.",
     "List 5 prime numbers above 100."),
    ("crlf_label_own_line", "Rewritten prompt\r\nExplain Bayes' rule with a medical test example.",
     "Explain Bayes' rule with a medical test example."),
    ("label_word_inside_prompt_kept", "New prompt ideas for a novel about whales", "New prompt ideas for a novel about whales"),
    ("mid_text_scaffolding_kept", "Explain gravity. #Rewritten Prompt#: Explain gravity to a child.",
     "Explain gravity. #Rewritten Prompt#: Explain gravity to a child."),
    ("empty", "   \n ", None),
    ("none", None, None),
    ("label_only", "#Rewritten Prompt#:", None),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in EVOLVED_CASES], ids=[c[0] for c in EVOLVED_CASES])
def test_parse_evolved(text, expected):
    assert parse_evolved(text) == expected


# ---------------------------------------------------------------- evolution_failed

ORIGINAL = "Explain how photosynthesis works."
HARDER = "Explain how C4 photosynthesis differs from C3 photosynthesis in hot, dry climates."
GOOD_ANSWER = ("C4 plants first fix carbon dioxide into a four-carbon compound in mesophyll cells, then release it "
               "in bundle-sheath cells, which keeps RuBisCO saturated with CO2 and limits photorespiration.")

FAILED_CASES = [
    ("none", ORIGINAL, None, None, "empty"),
    ("blank", ORIGINAL, "  ", None, "empty"),
    ("identical", ORIGINAL, ORIGINAL, None, "identical"),
    ("identical_after_normalization", ORIGINAL, "  explain HOW photosynthesis works!  ", None, "identical"),
    ("nearly_identical", "Explain how photosynthesis works in green plants and algae today.",
     "Explain how photosynthesis works in green plants and algea today.", None, "nearly identical"),
    ("parsed_output_keeps_label", ORIGINAL, parse_evolved("Explain C4 plants.\n#Rewritten Prompt#: " + HARDER), None,
     "scaffolding"),
    ("still_has_rewritten_label", ORIGINAL, "#Rewritten Prompt#: " + HARDER, None, "scaffolding"),
    ("mentions_given_prompt", ORIGINAL, "Using the Given Prompt, explain C4 plants in detail.", None, "scaffolding"),
    ("short_sorry", ORIGINAL, HARDER, "I'm sorry, but I don't have enough information to answer that.", "apology"),
    ("as_an_ai_short", ORIGINAL, HARDER, "As an AI language model, I have no access to climate data.", "apology"),
    ("hard_refusal_long", ORIGINAL, HARDER, "I cannot help with that request. " + "Filler words here. " * 40, "refusal"),
    ("stop_words_only", ORIGINAL, HARDER, "The ... and, of it!", "stop words"),
    ("punctuation_only", ORIGINAL, HARDER, "?!... --", "stop words"),
]


@pytest.mark.parametrize("original,evolved,answer,fragment", [c[1:] for c in FAILED_CASES], ids=[c[0] for c in FAILED_CASES])
def test_evolution_failed(original, evolved, answer, fragment):
    reason = evolution_failed(original, evolved, answer)
    assert reason is not None and fragment in reason


KEPT_CASES = [
    ("harder_no_answer", ORIGINAL, HARDER, None),
    ("harder_good_answer", ORIGINAL, HARDER, GOOD_ANSWER),
    ("long_answer_with_polite_sorry", ORIGINAL, HARDER, "Sorry for the long answer! " + GOOD_ANSWER * 4),
    ("original_itself_about_prompts", "Improve the given prompt for clarity.", ("Improve the given prompt for clarity and "
     "add two example outputs that show the expected format."), None),
]


@pytest.mark.parametrize("original,evolved,answer", [c[1:] for c in KEPT_CASES], ids=[c[0] for c in KEPT_CASES])
def test_evolution_kept(original, evolved, answer):
    assert evolution_failed(original, evolved, answer) is None


# ---------------------------------------------------------------- parse_quality

QUALITY_CASES = [
    ("plain_keep", "Reason: Correct and complete.\nVerdict: KEEP\nScore: 9", None, True, 9, "Correct and complete."),
    ("bold_drop", "**Reason:** The math is wrong.\n**Verdict:** DROP\n**Score:** 2", None, False, 2, "The math is wrong."),
    ("lowercase_crlf", "the response is fine.\r\nverdict: keep\r\nscore: 7", None, True, 7, "the response is fine."),
    ("last_verdict_wins", "Verdict: KEEP\nOn reflection the code does not run.\nVerdict: DROP\nScore: 3", None, False, 3, None),
    ("echoed_format_ignored", "Reason: Off-topic.\nVerdict: KEEP or Verdict: DROP\nVerdict: DROP\nScore: 1", None, False, 1, "Off-topic."),
    ("score_over_ten_slash", "Verdict: KEEP\nScore: 8/10", None, True, 8, None),
    ("score_other_scale", "Verdict: KEEP\nScore: 4/5", None, True, 8, None),
    ("score_out_of_range", "Verdict: KEEP\nScore: 42", None, True, None, None),
    ("min_score_overrides", "Verdict: KEEP\nScore: 5", 7, False, 5, None),
    ("min_score_keeps", "Verdict: DROP\nScore: 8", 7, True, 8, None),
    ("score_only_with_min", "Score: 6", 5, True, 6, None),
    ("bracketed_verdict", "Final verdict: [DROP]\nScore: [3]", None, False, 3, None),
    ("inline_single_line", "Reason: clear and accurate. Verdict: KEEP Score: 10", None, True, 10, "clear and accurate."),
]


@pytest.mark.parametrize("text,min_score,keep,score,reason", [c[1:] for c in QUALITY_CASES], ids=[c[0] for c in QUALITY_CASES])
def test_parse_quality(text, min_score, keep, score, reason):
    out = parse_quality(text, min_score=min_score)
    assert out["keep"] is keep and out["score"] == score and out["error"] is None
    if reason is not None:
        assert out["reason"] == reason


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"), (None, "empty"), ("Looks good to me.", "no verdict"),
    ("Score: 6", "no verdict"), ("Verdict: KEEP or DROP\nScore: N", "no verdict"),
])
def test_parse_quality_errors(text, fragment):
    out = parse_quality(text)
    assert out["keep"] is None and fragment in out["error"]


# ---------------------------------------------------------------- prompt builders

def test_evol_messages_distinct_and_contain_instruction():
    instruction = "Summarize the causes of World War I."
    methods = EVOL_IN_DEPTH + EVOL_IN_BREADTH
    contents = [evol_messages(instruction, m)[-1]["content"] for m in methods]
    assert len(set(contents)) == len(methods)
    assert all(instruction in c for c in contents)
    with pytest.raises(ValueError):
        evol_messages(instruction, "harder")


def test_self_instruct_and_lamini_include_inputs():
    seeds = ["Write a haiku about rain.", "Explain what a black hole is."]
    content = self_instruct_messages(seeds, 7, criteria="avoid questions about sports")[-1]["content"]
    assert all(s in content for s in seeds) and "7" in content and "avoid questions about sports" in content
    content = lamini_messages(["astronomy", "cooking"], seeds, num_instructions=3)[-1]["content"]
    assert "astronomy" in content and "cooking" in content and all(s in content for s in seeds)
    with pytest.raises(ValueError):
        self_instruct_messages(seeds, 0)
    with pytest.raises(ValueError):
        lamini_messages([], seeds)


def test_orca_messages_and_stable_spread_selection():
    assert orca_messages("Q?", 0) == [{"role": "system", "content": ORCA_SYSTEM_MESSAGES[0]}, {"role": "user", "content": "Q?"}]
    assert orca_messages("Q?", "Be brief.")[0]["content"] == "Be brief."
    assert orca_messages("Q?", "") == [{"role": "user", "content": "Q?"}]
    with pytest.raises(ValueError):
        orca_messages("Q?", len(ORCA_SYSTEM_MESSAGES))
    assert 6 <= len(ORCA_SYSTEM_MESSAGES) <= 16
    picks = [pick_system_message(f"row-{i}", seed=3) for i in range(800)]
    assert picks == [pick_system_message(f"row-{i}", seed=3) for i in range(800)]
    counts = Counter(picks)
    assert set(counts) == set(range(len(ORCA_SYSTEM_MESSAGES)))
    assert min(counts.values()) > 800 / len(ORCA_SYSTEM_MESSAGES) / 2
    assert picks != [pick_system_message(f"row-{i}", seed=4) for i in range(800)]


@pytest.mark.parametrize("weights", [None, {"honesty": 0.7, "verbalized_calibration": 0.3}])
def test_pick_principle_follows_weights(weights):
    expected = weights or DEFAULT_PRINCIPLE_WEIGHTS
    picks = [pick_principle(f"id-{i}", seed=11, weights=weights) for i in range(2000)]
    assert picks[:50] == [pick_principle(f"id-{i}", seed=11, weights=weights) for i in range(50)]
    counts = Counter(name for name, _ in picks)
    total = sum(expected.values())
    for name in PRINCIPLES:
        assert abs(counts[name] / 2000 - expected.get(name, 0) / total) <= 0.05
    assert all(prompt in PRINCIPLES[name] for name, prompt in picks)
    assert len({prompt for _, prompt in picks}) > len(expected) * 2  # prompts vary within a principle


def test_principles_and_bad_weights():
    assert set(PRINCIPLES) == {"helpfulness", "honesty", "truthfulness", "verbalized_calibration"}
    assert all(len(p) >= 3 and len(set(p)) == len(p) for p in PRINCIPLES.values())
    with pytest.raises(ValueError):
        pick_principle("r", 0, {"kindness": 1.0})
    with pytest.raises(ValueError):
        pick_principle("r", 0, {"honesty": 0.0})


def test_quality_messages_ask_for_verdict_and_score():
    msgs = quality_messages("Add 2 and 2.", "4", rubric="Only keep arithmetic that is correct.")
    text = msgs[-1]["content"]
    assert "Add 2 and 2." in text and "Only keep arithmetic that is correct." in text
    assert "Verdict: KEEP" in text and "Verdict: DROP" in text and "Score:" in text
    # The builder's own format line, echoed back by a lazy judge, is not a decision.
    assert parse_quality(text)["keep"] is None
