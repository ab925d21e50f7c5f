"""`notos push`: the dataset card written locally (--card-only) and checked line by line; the push
itself fails in one line when the Hub cannot be reached."""

import socket

import pytest


@pytest.fixture
def binarized(cli, review_data, tmp_path):
    dedup = tmp_path / "dedup"
    assert cli("curate", "dedup", review_data, "--out", dedup).returncode == 0
    out = tmp_path / "pairs"
    result = cli("curate", "binarize", dedup, "--out", out, "--strategy", "mean")
    assert result.returncode == 0, result.stderr
    return out


def test_card_only_writes_the_dataset_card(cli, binarized, tmp_path):
    result = cli("push", binarized, "me/uf-notus", "--card-only", "--out", tmp_path / "card", "--license", "mit")
    assert result.returncode == 0, result.stderr
    card = (tmp_path / "card" / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n") and "size_categories:\n- n<1K" in card
    assert "# me/uf-notus" in card
    assert "`notos curate binarize` (" in card and "`notos curate dedup` (" in card and "strategy=mean" in card
    assert "- rows: 13" in card and "- prompts: 13" in card
    assert "model-1 (13)" in card  # models of the chosen / rejected responses, counted
    assert "| honesty | 3 | 11 | 3 | 1 | 11 | 0 | 0 |" in card  # ratings of the completions the chain started from
    assert "## Decontamination and dedup" in card and "- dedup: 0 prompts removed" in card
    assert "- strategy `mean`: chosen = the best mean of aspect ratings" in card
    assert "pairs 13" in card


def test_card_of_rated_completions_has_rating_distributions(cli, review_data, tmp_path):
    result = cli("push", review_data, "me/uf", "--card-only", "--out", tmp_path / "README.md")
    assert result.returncode == 0, result.stderr
    card = (tmp_path / "README.md").read_text()
    assert "| aspect | 1 | 2 | 3 | 4 | 5 | N/A | missing |" in card
    # honesty over the 29 completions: 1 x3 (f1-f3 #0), 2 x10 (u #1) + f3 #2, 3 x3, 4 x1 (f1 #1), 5 x11
    assert "| honesty | 3 | 11 | 3 | 1 | 11 | 0 | 0 |" in card
    assert "none recorded in this data's chain" in card and "license: other" in card


def test_push_offline_is_one_line(cli, binarized):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli("push", binarized, "me/uf-notus", env={"HF_ENDPOINT": f"http://127.0.0.1:{port}",
                                                         "HF_TOKEN": "hf_not_a_real_token_42"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "push me/uf-notus" in result.stderr
    assert "hf_not_a_real_token_42" not in result.stderr
    assert cli("push", binarized, "not-a-repo-id").returncode == 2
