"""Shipped recipes (pipeline YAML here, training YAML in train/) and the loader that builds any
pipeline file with every step type notos has (`catalog.STEPS`).

    from notos.recipes import load_pipeline
    pipeline, config = load_pipeline("ultrafeedback", ["rate.llm=openai:gpt-4o-mini"])
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from notos.errors import NotosError

from notos.shipped import RECIPES as FOLDER


def resolve(spec: str | Path) -> Path:
    """A YAML path, or the name of a shipped pipeline recipe (`quickstart`)."""
    path = Path(spec)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    shipped = FOLDER / f"{spec}.yaml"
    if shipped.exists():
        return shipped
    raise NotosError(f"pipeline '{spec}': no such file and no shipped recipe of that name (recipes: {', '.join(names())})")


def names() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def load_pipeline(spec: str | Path, overrides=(), input_path: str | None = None, llm_server: dict | None = None,
                  llm_client: dict | None = None):
    """(Pipeline, resolved config) of a pipeline file or shipped recipe, with `--set` overrides,
    `--input` and `--llm-base-url` (`llm_server`: base_url, model, api_key_env) applied, then
    `--llm-timeout` / `--llm-max-retries` (`llm_client`: timeout, max_retries) on every LLM served
    over HTTP, after the overrides, so an LLM swapped in with --set gets them too."""
    from notos.pipeline.yaml_io import build_pipeline as build, load_pipeline as load
    from notos.recipes.catalog import STEPS, expand_llm_spec, llm_connection, point_llms

    path = resolve(spec)
    server = {k: v for k, v in (llm_server or {}).items() if k in ("base_url", "model", "api_key_env", "pool")}
    edit = partial(point_llms, **server) if llm_server else None
    pipeline, config = load(path, list(overrides), input_path, catalog=STEPS, edit=edit, expand=expand_llm_spec)
    if llm_client and any(v is not None for v in llm_client.values()):
        config = llm_connection(config, **llm_client)
        pipeline = build(config, path.parent, origin=str(path), catalog=STEPS)
    return pipeline, config


def build_pipeline(config: dict, base_dir: str | Path = ".", origin: str = "pipeline"):
    """A pipeline from a config mapping, with every step type notos has."""
    from notos.pipeline.yaml_io import build_pipeline as build
    from notos.recipes.catalog import STEPS

    return build(config, base_dir, origin, catalog=STEPS)
