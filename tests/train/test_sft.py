"""SFT on the embedded model, CPU: the loss on its data goes down (measured by us), the loss is
on the assistant's replies only, and a rerun on the same folder resumes from its checkpoint."""

import json

import pytest
from train_helpers import CONVERSATIONS, reply_logprob, train, trained

from notos.train.templates import training_template

pytestmark = pytest.mark.slow  # training on the embedded model

QUICK = ["eval_fraction=0", "max_length=96", "lr_scheduler=constant"]


def conversations(n):
    return [json.loads(line)["messages"] for line in CONVERSATIONS.read_text().splitlines()[:n]]


def reply_nll(model, tokenizer, rows) -> float:
    return -sum(reply_logprob(model, tokenizer, m[:-1], m[-1:]) for m in rows) / len(rows)


def test_sft_lowers_the_loss_on_its_data(tmp_path, base_model):
    out = tmp_path / "sft"
    (summary,) = train("quickstart-sft", out, *QUICK, "limit=8", "batch_size=4", "max_steps=3", "save_steps=100")
    before = reply_nll(*base_model, conversations(8))
    after = reply_nll(*trained(out), conversations(8))
    assert after < before - 1.0, (before, after)
    assert summary["steps"] == 3 and (out / "model" / "adapter_model.safetensors").exists()


def test_loss_is_on_the_assistant_replies_only(base_model):
    _, tokenizer = base_model
    messages = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]
    marked = training_template(tokenizer)
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, chat_template=marked,
                                            return_assistant_tokens_mask=True)
    trained_on = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"]) if m]
    assert tokenizer.decode(trained_on) == "Blue.<|im_end|>"
    # The marked template renders the same text the model sees at inference.
    assert tokenizer.apply_chat_template(messages, tokenize=False, chat_template=marked) == \
        tokenizer.apply_chat_template(messages, tokenize=False)


def test_rerun_on_the_same_folder_resumes_from_the_last_checkpoint(tmp_path):
    out = tmp_path / "sft"
    sets = [*QUICK, "limit=4", "batch_size=2", "max_length=48", "save_steps=1", "save_total_limit=3"]
    (first,) = train("quickstart-sft", out, *sets, "max_steps=2")
    assert first["resumed_from"] is None and (out / "checkpoints" / "checkpoint-2").is_dir()
    (second,) = train("quickstart-sft", out, *sets, "max_steps=3")
    assert second["resumed_from"] == "checkpoint-2" and second["steps"] == 3
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert steps == [1, 2, 3]  # the history of both runs, once each
    (third,) = train("quickstart-sft", out, *sets, "max_steps=3")  # finished: nothing left to do
    assert third["resumed_from"] == "checkpoint-3" and third["final_loss"] == second["final_loss"], (third, second)
