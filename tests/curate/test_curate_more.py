"""Whole-word rationale cues, forced binarization, near-copy recall on real prompts, and the
report rendered in a real browser."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pytest

from notos.curate import lexicon
from notos.curate.binarize import binarize, binarize_stats
from notos.curate.dedup import cluster_prompts
from notos.data.completions import completions_from_rows
from notos.errors import NotosError


def test_rationale_cues_match_whole_words_only():
    texts = pa.array(["The answer is flawless and accurate.", "Flawing the text, errorsome and mistaken-ish.",
                      "The text has errors and flaws.", "It is not accurate.", "Severe hallucinations throughout."])
    assert lexicon.reads(texts).tolist() == [1, 0, -1, -1, -1]
    assert lexicon.first_cue(texts.take([2]), negative=True) == ["errors"]


def scored(prompt_id, scores):
    return [{"prompt_id": prompt_id, "prompt": "q", "completion_index": k, "response": f"r{k}",
             "overall_score": s} for k, s in enumerate(scores)]


def test_forced_sides_win_over_the_strategy():
    c = completions_from_rows(scored("a", [9, 5, 3, 1]) + scored("b", [2, 8, 6, 4]) + scored("c", [7, 7, 1, 5]))
    forced = {"a": {"chosen": 3, "rejected": None},  # the worst forced chosen: rejected among the others
              "b": {"chosen": None, "rejected": 1},  # the best forced rejected: chosen is the best of the rest
              "c": {"chosen": 2, "rejected": 0}}
    for strategy in ("overall", "best-worst"):
        pairs = {p["prompt_id"]: p for p in binarize(c, strategy, score="overall", forced=forced).to_pylist()}
        assert pairs["a"]["index_chosen"] == 3 and pairs["a"]["index_rejected"] in (0, 1, 2)
        assert (pairs["b"]["index_chosen"], pairs["b"]["index_rejected"]) == (2, 1)
        assert (pairs["c"]["index_chosen"], pairs["c"]["index_rejected"]) == (2, 0)
        assert pairs["c"]["score_chosen"] == 1.0  # the real scores are written
    best_worst = {p["prompt_id"]: p for p in binarize(c, "best-worst", score="overall", forced=forced).to_pylist()}
    assert best_worst["a"]["index_rejected"] == 2  # the worst of the rest (3), once 3 counts as the best
    assert binarize_stats(binarize(c, "overall", forced=forced))["forced_prompts"] == 3
    unforced = {p["prompt_id"]: p for p in binarize(c, "overall", min_margin=100, forced={"c": {"chosen": 2}}).to_pylist()}
    assert set(unforced) == {"c"}  # the margin never drops what a person decided


def test_forced_errors_name_the_prompt():
    c = completions_from_rows(scored("a", [9, 5]))
    with pytest.raises(NotosError, match="prompt a has no completion 7"):
        binarize(c, "overall", forced={"a": {"chosen": 7}})
    with pytest.raises(NotosError, match="forced both chosen and rejected"):
        binarize(c, "overall", forced={"a": {"chosen": 1, "rejected": 1}})
    assert binarize(c, "overall", forced={"gone": {"chosen": 0}}).num_rows == 1  # a removed prompt: ignored


def _edited(words: list[str], edits: int, vocab: list[str], rng: random.Random) -> str:
    words = list(words)
    for _ in range(edits):
        at = rng.randrange(len(words))
        kind = rng.choice(("replace", "insert", "delete"))
        if kind == "replace":
            words[at] = rng.choice(vocab)
        elif kind == "insert":
            words.insert(at, rng.choice(vocab))
        else:
            del words[at]
    return " ".join(words)


def test_near_copies_with_one_to_three_word_edits_are_found_on_real_prompts(shared_data):
    rows = json.loads((shared_data / "alpaca_eval" / "notus-7b-v1_outputs.json").read_text())
    texts = list(dict.fromkeys(r["instruction"] for r in rows))
    vocab = [w for t in texts for w in t.split()]
    rng = random.Random(0)
    originals = [i for i, t in enumerate(texts) if 20 <= len(t.split()) <= 110]
    copies, edits = [], []
    for k, i in enumerate(originals):
        edits.append(k % 3 + 1)
        copies.append(_edited(texts[i].split(), edits[-1], vocab, rng))
    everything = texts + copies
    representative, _, _ = cluster_prompts(everything)
    found = np.array([representative[len(texts) + k] != len(texts) + k for k in range(len(copies))])
    for n in (1, 2, 3):
        share = found[np.array(edits) == n].mean()
        assert share >= 0.9, f"{n}-word edits: {share:.0%} found"
    # precision: among AlpacaEval's own prompts, only its templated near-twins cluster
    own = cluster_prompts(texts)[0]
    assert (own != np.arange(len(texts))).mean() < 0.03


@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium binary: the browser check needs one")
def test_report_renders_in_a_real_browser(cli, tmp_path):
    from test_onepass import dataset  # the same small records the one-pass tests use

    path, bench, _ = dataset(tmp_path)
    out = tmp_path / "all"
    assert cli("curate", "all", path, "--out", out, "-b", bench).returncode == 0
    shot = tmp_path / "report.png"
    done = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1280,2000", (out / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and shot.exists(), done.stderr[-500:]
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.05  # a drawn page, not a blank one
