"""What `notos models` shows: the models this machine can use offline and the backends that
can run them. Nothing here loads a model or touches the network."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

from notos.llms.embedded import EMBEDDED_NAME, INSTALL_HINT, embedded_gguf


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def backends() -> list[dict]:
    """One entry per backend: can it run here, and if not, what to install."""
    gpu = _has_gpu()
    rows = [
        {"backend": "openai", "spec": "openai:MODEL | http://HOST/v1", "ready": True,
         "note": "OPENAI_API_KEY is set" if os.environ.get("OPENAI_API_KEY") else "OPENAI_API_KEY not set (local servers need none)"},
        {"backend": "transformers", "spec": "embedded | transformers:PATH", "ready": _version("transformers") is not None,
         "note": f"transformers {_version('transformers')}, {'GPU' if gpu else 'CPU'}"},
    ]
    vllm = _version("vllm")
    rows.append({"backend": "vllm", "spec": "vllm:PATH", "ready": bool(vllm and gpu),
                 "note": (f"vllm {vllm}" if vllm else "pip install 'notos[vllm]'") + ("" if gpu else "; needs a GPU")})
    llama = _version("llama_cpp_python") or _version("llama-cpp-python")
    rows.append({"backend": "llamacpp", "spec": "llamacpp:FILE.gguf | llamacpp:embedded", "ready": bool(llama),
                 "note": f"llama-cpp-python {llama}" if llama else "pip install 'notos[llamacpp]' (see README: build flags)"})
    return rows


def models() -> list[dict]:
    """The embedded model, then the models in the local Hugging Face cache."""
    path = embedded_gguf(required=False)
    found = [{
        "name": EMBEDDED_NAME, "spec": "embedded", "where": str(path) if path else f"not installed: {INSTALL_HINT}",
        "size_mb": round(path.stat().st_size / 2**20, 1) if path else None, "ready": path is not None,
    }]
    found.extend(_hub_cache_models())
    return found


def _hub_cache_models() -> list[dict]:
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # noqa: BLE001 - no cache folder (or an unreadable one) just means none listed
        return []
    return [
        {"name": repo.repo_id, "spec": f"transformers:{repo.repo_id}", "where": str(repo.repo_path),
         "size_mb": round(repo.size_on_disk / 2**20, 1), "ready": True}
        for repo in sorted(cache.repos, key=lambda r: r.repo_id) if repo.repo_type == "model"
    ]


def _has_gpu() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())
