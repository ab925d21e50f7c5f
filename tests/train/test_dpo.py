"""DPO on the embedded model, CPU: what the policy learned, measured with our own scoring code."""

import json

import pyarrow.parquet as pq
import pytest
from train_helpers import mean_margin, pairs, reply_logprob, train, trained, write_pairs

pytestmark = pytest.mark.slow  # training on the embedded model

QUICK = ["eval_fraction=0", "save_steps=100", "max_length=128", "batch_size=4"]


def test_dpo_raises_the_log_prob_margin_of_chosen_over_rejected(tmp_path, base_model):
    data = write_pairs(tmp_path / "data" / "pairs.jsonl", 8)
    out = tmp_path / "dpo"
    # merged in fp32 here so its logits can be compared exactly (the default, bf16: test_outputs_card.py)
    (summary,) = train("quickstart-dpo", out, *QUICK, "max_steps=3", "merge=true", "merged_dtype=fp32", data=str(data))
    before = mean_margin(*base_model, pairs(8))
    model, tokenizer = trained(out)
    after = mean_margin(model, tokenizer, pairs(8))
    # log p(chosen) - log p(rejected) on the training pairs, in nats: it must go up, clearly.
    assert after > before + 1.0, (before, after)
    assert summary["steps"] == 3 and summary["final_rewards/margins"] > 0

    # The output folder: adapter + tokenizer, resolved config, metrics, report, merged model.
    assert (out / "model" / "adapter_model.safetensors").exists() and (out / "model" / "tokenizer.json").exists()
    assert "beta: 0.1" in (out / "config.yaml").read_text()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [x for x in lines if "loss" in x]
    assert [x["step"] for x in logged] == [1, 2, 3]
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"} <= set(logged[0])
    report = (out / "report.html").read_text()
    assert report.count("<img") >= 2 and "DPO rewards" in report
    assert json.loads((out / "notos-train.json").read_text())["kind"] == "dpo"
    import torch
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(str(out / "merged")).eval()
    probe = torch.tensor([tokenizer.encode("Hello there")])
    with torch.no_grad():
        assert torch.allclose(merged(probe).logits, model(probe).logits, atol=1e-4)


def test_precomputed_reference_log_probs_are_kept_beside_the_data_and_reused(tmp_path, base_model):
    data = write_pairs(tmp_path / "data" / "pairs.jsonl", 4)
    sets = [*QUICK, "reference=precomputed", "max_steps=1", "batch_size=2", "lr_scheduler=constant"]
    (first,) = train("quickstart-dpo", tmp_path / "one", *sets, data=str(data))
    assert first["ref_logps"] == "computed"
    cache = tmp_path / "data" / ".notos-ref-logps"
    (file,) = cache.glob("ref-logps-*.parquet")
    assert first["ref_logps_file"] == str(file)
    # They are the reference model's log-probs of each reply: check against our own scoring.
    cached = pq.read_table(file).to_pylist()
    for row, logps in zip(pairs(4), cached):
        assert logps["ref_chosen_logps"] == pytest.approx(reply_logprob(*base_model, row["prompt"], row["chosen"]), abs=2e-3)
        assert logps["ref_rejected_logps"] == pytest.approx(reply_logprob(*base_model, row["prompt"], row["rejected"]), abs=2e-3)
    # Another run on the same data and reference (here with another beta) reads them back.
    (second,) = train("quickstart-dpo", tmp_path / "two", *sets, "beta=0.3", data=str(data))
    assert second["ref_logps"] == "reused" and second["ref_logps_file"] == str(file)
    assert len(list(cache.glob("*.parquet"))) == 1
