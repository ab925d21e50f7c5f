"""The dequantized weights of a GGUF model, kept on disk so that the second load is a file read.

transformers turns a GGUF file into float32 tensors (and its tokenizer into a fast tokenizer)
on every load: ~15-20 s for the embedded 135M model, against ~2 s to read them back from a
safetensors file. The cache lives in `$NOTOS_CACHE_DIR/weights`, else
`$XDG_CACHE_HOME/notos/weights`, else `~/.cache/notos/weights`, one folder per GGUF file keyed
by its resolved path, size and modification time (a replaced file gets a new folder).

A folder is complete or absent: it is written under a temporary name and renamed into place,
and its `manifest.json` (written last) records each weights file's size and checksum. A
second dtype (the bfloat16 copy the backend samples with) is added to a complete folder the
same way, file then manifest, each renamed into place, and so are the 4-bit packs of the
decoding path (`q4.safetensors`, q4_decode.py). A folder that
fails to read back is removed and rebuilt; one that cannot be written (read-only or full disk)
only costs the next load its speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
import zlib
from pathlib import Path

WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
FORMAT = 2  # bump when what a folder holds changes: old folders are then ignored
CHUNK = 1 << 24


def cache_root() -> Path:
    if os.environ.get("NOTOS_CACHE_DIR"):
        return Path(os.environ["NOTOS_CACHE_DIR"]).expanduser() / "weights"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "notos" / "weights"


def cache_folder(gguf: Path) -> Path:
    resolved = gguf.resolve()
    stat = resolved.stat()
    key = hashlib.sha256(f"{FORMAT}|{resolved}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / f"{resolved.stem}-{key}"


def checksum(path: Path) -> str:
    """crc32 of the file: catches truncation and flipped bytes at ~1 GB/s (sha256: ~3x slower)."""
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            crc = zlib.crc32(block, crc)
    return f"{crc:08x}"


def weights_file(dtype_name: str = "float32") -> str:
    return WEIGHTS if dtype_name == "float32" else f"model-{dtype_name}.safetensors"


def is_complete(folder: Path, name: str = WEIGHTS) -> bool:
    """The manifest is there and lists `name` with the size and checksum the file has."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        entry = manifest["files"][name]
        weights = folder / name
        return (manifest.get("format") == FORMAT and weights.stat().st_size == entry["size"]
                and checksum(weights) == entry["crc32"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def add_weights(folder: Path, model, name: str) -> bool:
    """Keep a second copy of the weights (another dtype) in a complete folder."""
    from safetensors.torch import save_model

    return _add_file(folder, name, lambda path: save_model(model, path))


def add_tensors(folder: Path, name: str, tensors: dict) -> bool:
    """Keep named tensors (the 4-bit packs of q4_decode.py) in a complete folder."""
    from safetensors.torch import save_file

    return _add_file(folder, name, lambda path: save_file(tensors, path))


def read_tensors(folder: Path | None, name: str) -> dict | None:
    """The tensors of a file `add_tensors` wrote, or None when the folder lacks it (or it fails
    its checksum, or does not read back)."""
    from safetensors.torch import load_file

    if folder is None or not is_complete(folder, name):
        return None
    try:
        return load_file(folder / name)
    except Exception:  # noqa: BLE001 - an unreadable file is rebuilt by the caller
        return None


def _add_file(folder: Path, name: str, write) -> bool:
    """The file, then the manifest, each written beside its final name and renamed into place."""
    tag = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        if WEIGHTS not in json.loads((folder / MANIFEST).read_text()).get("files", {}):
            return False  # no float32 weights to stand beside (the caller has just read or written them)
        write(str(folder / (name + tag)))
        os.replace(folder / (name + tag), folder / name)
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["files"][name] = _entry(folder / name)
        (folder / (MANIFEST + tag)).write_text(json.dumps(manifest))
        os.replace(folder / (MANIFEST + tag), folder / MANIFEST)
        return True
    except (OSError, ValueError, KeyError) as exc:
        for leftover in folder.glob(f"*{tag}"):
            leftover.unlink(missing_ok=True)
        print(f"notos: cannot cache {name} in {folder} ({exc}); the next load converts it again", file=sys.stderr, flush=True)
        return False


def _entry(path: Path) -> dict:
    return {"size": path.stat().st_size, "crc32": checksum(path)}


def save(folder: Path, model, tokenizer) -> bool:
    """Write model + tokenizer to `folder` atomically; False (and one line) when the disk refuses."""
    from safetensors.torch import save_model

    temporary = folder.with_name(f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        temporary.mkdir(parents=True)
        save_model(model, str(temporary / WEIGHTS))  # handles the tied embedding / lm_head pair
        config = model.config.to_dict()
        config.pop("quantization_config", None)  # the tensors are plain floats now
        (temporary / "config.json").write_text(json.dumps(config, indent=1, default=str))
        model.generation_config.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        manifest = {"format": FORMAT, "files": {WEIGHTS: _entry(temporary / WEIGHTS)}}
        (temporary / MANIFEST).write_text(json.dumps(manifest))
        if folder.exists():
            if is_complete(folder):
                return True  # another process got there first: keep its folder for its readers
            shutil.rmtree(folder, ignore_errors=True)  # a corrupt folder we are replacing
        os.replace(temporary, folder)
        return True
    except OSError as exc:
        print(f"notos: cannot cache the dequantized weights in {folder.parent} ({exc.strerror or exc}); "
              "the next load converts the GGUF file again", file=sys.stderr, flush=True)
        return False
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # gone already after a successful rename


def load(folder: Path, dtype, name: str = WEIGHTS):
    """Model and tokenizer from a complete folder, without transformers' GGUF conversion."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    model = materialize(AutoConfig.from_pretrained(folder), load_file(folder / name), dtype)
    return model, AutoTokenizer.from_pretrained(folder)


def twin(model, dtype, folder: Path | None = None):
    """A second model beside `model`, its weights in `dtype` (`model` stays as it is): read
    from the cache folder where it holds them, else cast (~2 s for 135M parameters on a busy
    core) and added to the folder for the next load."""
    from safetensors.torch import load_file

    name = weights_file(str(dtype).removeprefix("torch."))
    config = model.config.__class__.from_dict(model.config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    if folder is not None and is_complete(folder, name):
        try:
            return materialize(config, load_file(folder / name), dtype)
        except Exception as exc:  # noqa: BLE001 - a file that does not read back is replaced below
            print(f"notos: the cached {name} does not load ({type(exc).__name__}); rebuilding it", file=sys.stderr, flush=True)
    copy = materialize(config, model.state_dict(), dtype)
    if folder is not None:
        add_weights(folder, copy, name)
    return copy


def materialize(config, state: dict, dtype):
    """The model of `config` holding `state`: built on the meta device (no random
    initialisation, no 540 MB of allocations to throw away: ~0.1 s instead of ~2 s), then
    given the tensors. Buffers computed at construction (rotary frequencies) stay as built,
    in float32."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    state = {name: tensor.to(dtype) if tensor.is_floating_point() else tensor for name, tensor in state.items()}
    if getattr(config, "tie_word_embeddings", False):
        shared = state.get("lm_head.weight", state.get("model.embed_tokens.weight"))
        state.setdefault("lm_head.weight", shared)
        state.setdefault("model.embed_tokens.weight", shared)
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    if any(p.is_meta for p in model.parameters()):
        raise ValueError("the cached weights do not cover every parameter of the model")
    return model.eval()
