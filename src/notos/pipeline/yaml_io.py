"""Pipelines as YAML: build one from a config, and write one back (round trip).

    name: my-pipeline
    batch_size: 50
    steps:
      - name: prompts
        type: load_data
        path: prompts.jsonl          # relative paths are read from the YAML file's folder
      - name: words
        type: python
        fn: my_steps:count_words     # a @step function from my_steps.py beside the YAML
        after: prompts
        concurrency: 2

The engine knows only its own step types (sources, routing, column steps: `ENGINE_STEPS`);
whoever builds a pipeline passes the catalog of the others (`notos.recipes.catalog.STEPS` has
every shipped type). Every problem is a one-line error naming the file, the step and the key.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from notos.data.io import iter_batches
from notos.errors import GraphError, NotosError
from notos.overrides import looks_like_path, parse_override
from notos.pipeline.columns import drop_columns, filter_rows, group_columns, keep_columns, rename_columns
from notos.pipeline.decorators import RUNNER_SETTINGS, StepFactory, check_options
from notos.pipeline.graph import DEFAULT_BATCH_SIZE, Pipeline
from notos.pipeline.routing import sample_n
from notos.pipeline.sources import from_rows, load_data
from notos.pipeline.step import Step

TOP_KEYS = ("name", "description", "note", "batch_size", "steps")  # note: printed after a run
STEP_KEYS = ("name", "type", "after", "fn", "enabled")
DEFAULT_SETTINGS = {"concurrency": 1, "row_concurrency": 64, "workers": "inline", "resources": {}}
ENGINE_STEPS: dict[str, Callable] = {
    "load_data": load_data,
    "from_rows": from_rows,
    "sample_n": sample_n,
    "keep_columns": keep_columns,
    "rename_columns": rename_columns,
    "drop_columns": drop_columns,
    "filter_rows": filter_rows,
    "group_columns": group_columns,
}
# `--set step.option.key=value` on an option that holds a string: the catalog may know how to
# expand it into a mapping first (an LLM spec "openai:gpt-4o" -> {backend, model}).
Expand = Callable[[str, str], dict | None]


def read_config(path: str | Path) -> dict:
    return read_yaml_mapping(path, "pipeline file", "a pipeline file must be a mapping with a 'steps' list")


def read_yaml_mapping(path: str | Path, what: str, not_a_mapping: str) -> dict:
    """A YAML file that must hold a mapping; every problem is one line naming the file."""
    path = Path(path)
    if not path.exists():
        raise NotosError(f"{path}: no such {what}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise NotosError(f"{path}: not valid UTF-8") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise NotosError(f"{path}: invalid YAML{where} ({getattr(exc, 'problem', None) or 'syntax error'})") from None
    if not isinstance(config, dict):
        raise NotosError(f"{path}: {not_a_mapping}")
    return config


def apply_overrides(config: dict, overrides: list[str], expand: Expand | None = None) -> dict:
    """`--set step.option=value` (or `--set batch_size=10`); values are parsed as YAML."""
    config = copy.deepcopy(config)
    steps = {s.get("name"): s for s in config.get("steps") or [] if isinstance(s, dict)}
    for item in overrides:
        key, value = parse_override(item, looks_like_path)  # a path typed in a shell is relative to its folder
        if "." not in key:
            if key not in TOP_KEYS or key == "steps":
                raise NotosError(f"--set {item}: unknown pipeline key '{key}' (keys: name, batch_size)")
            config[key] = value
            continue
        step_name, option = key.split(".", 1)
        if step_name not in steps:
            raise NotosError(f"--set {item}: no step named '{step_name}' (steps: {', '.join(map(str, steps))})")
        if "." in option:
            _set_inside(steps[step_name], option, value, item, expand)
        else:
            steps[step_name][option] = value
    return config


def _set_inside(entry: dict, option: str, value, item: str, expand: Expand | None) -> None:
    """`--set judge.llm.model=gpt-4o`: one key inside a mapping option (a string the catalog can
    expand is expanded first, so the other keys keep their values)."""
    head, key = option.split(".", 1)
    current = entry.get(head)
    if isinstance(current, str) and expand is not None:
        current = expand(head, current) or current
    if not isinstance(current, dict) or "." in key:
        raise NotosError(f"--set {item}: option '{head}' is not a mapping with keys to set")
    entry[head] = {**current, key: value}


def drop_disabled(config: dict, origin: str) -> dict:
    """Steps with `enabled: false` are left out; their children take their parents instead
    (e.g. `--set critique.enabled=false` skips the critique between rating and records)."""
    entries = [e for e in config.get("steps") or [] if isinstance(e, dict)]
    off = {}
    for entry in entries:
        flag = entry.get("enabled", True)
        if not isinstance(flag, bool):
            raise NotosError(f"{origin}: step '{entry.get('name')}': 'enabled' must be true or false, got {flag!r}")
        if not flag:
            off[entry.get("name")] = _parents(entry)
    if not off:
        return config

    def resolve(parents: list) -> list:
        out = []
        for parent in parents:
            out.extend(resolve(off[parent]) if parent in off else [parent])
        return out

    kept = []
    for entry in entries:
        if entry.get("name") in off:
            continue
        if entry.get("after"):
            parents = list(dict.fromkeys(resolve(_parents(entry))))
            entry = {**entry, "after": parents[0] if len(parents) == 1 else parents}
        kept.append(entry)
    return {**config, "steps": kept}


def _parents(entry: dict) -> list:
    after = entry.get("after")
    return [after] if isinstance(after, str) else list(after or [])


def replace_source(config: dict, input_path: str) -> dict:
    """`--input FILE`: the pipeline's one source reads FILE instead."""
    config = copy.deepcopy(config)
    step_list = config.get("steps") or []
    sources = [s for s in step_list if isinstance(s, dict) and not s.get("after")]
    if len(sources) != 1:
        names = ", ".join(str(s.get("name")) for s in sources)
        raise NotosError(f"--input: the pipeline must have exactly one source step to replace (it has: {names or 'none'})")
    keep = {k: v for k, v in sources[0].items() if k in ("name", "id_column", "split", *RUNNER_SETTINGS)}
    if keep.get("id_column"):
        # The recipe's id column applies to the new file only if that file has it.
        first = next(iter_batches(input_path, 1, keep.get("split")), [{}])[0]
        if keep["id_column"] not in first:
            del keep["id_column"]
    sources[0].clear()
    sources[0].update({**keep, "type": "load_data", "path": str(Path(input_path).resolve())})
    return config


def build_pipeline(config: dict, base_dir: str | Path = ".", origin: str = "pipeline",
                   catalog: Mapping[str, Callable] = ENGINE_STEPS) -> Pipeline:
    """A graph from a config; `catalog` maps each `type:` to its step factory."""
    unknown = [k for k in config if k not in TOP_KEYS]
    if unknown:
        raise NotosError(f"{origin}: unknown key '{unknown[0]}' (keys: {', '.join(TOP_KEYS)})")
    config = drop_disabled(config, origin)
    entries = config.get("steps")
    if not isinstance(entries, list) or not entries:
        raise NotosError(f"{origin}: 'steps' must be a non-empty list")
    batch_size = config.get("batch_size", DEFAULT_BATCH_SIZE)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise NotosError(f"{origin}: 'batch_size' must be a positive integer, got {batch_size!r}")
    base_dir = Path(base_dir).resolve()
    steps: dict[str, Step] = {}
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry.get("name"):
            raise NotosError(f"{origin}: step {number} must be a mapping with a 'name'")
        name = entry["name"]
        if name in steps:
            raise NotosError(f"{origin}: two steps are named '{name}'")
        steps[name] = _build_step(entry, base_dir, origin, catalog)
    for entry in entries:
        after = entry.get("after")
        parents = [after] if isinstance(after, str) else list(after or [])
        step = steps[entry["name"]]
        if not parents and step.kind != "source":
            raise GraphError(f"step '{step.name}' is not connected: add `after: <step>` (its input)")
        for parent in parents:
            if parent not in steps:
                raise GraphError(f"step '{step.name}': after: no step named '{parent}'")
            steps[parent] >> step
    return Pipeline(*steps.values(), name=str(config.get("name", origin)), batch_size=batch_size)


def _build_step(entry: dict, base_dir: Path, origin: str, catalog: Mapping[str, Callable]) -> Step:
    name, type_name = entry["name"], entry.get("type")
    if not type_name:
        raise GraphError(f"step '{name}': missing 'type' (types: python, {', '.join(sorted(catalog))})")
    options = {k: v for k, v in entry.items() if k not in STEP_KEYS}
    for key, value in list(options.items()):
        if looks_like_path(key, value):
            options[key] = str(base_dir / value)  # paths in a pipeline file are relative to that file
    if type_name == "python":
        factory = _import_step(name, entry.get("fn"), base_dir)
        return factory(name=name, **options)
    if "fn" in entry:
        raise GraphError(f"step '{name}': 'fn' is only for type: python")
    factory = catalog.get(type_name)
    if factory is None:
        raise GraphError(f"step '{name}': unknown type '{type_name}' (types: python, {', '.join(sorted(catalog))})")
    settings = {k: options.pop(k) for k in RUNNER_SETTINGS if k in options}
    check_options(name, factory, options, skip_first=False, strict=True)
    try:
        return factory(name=name, **options, **settings)
    except TypeError as exc:
        raise GraphError(f"step '{name}': {exc}") from None


@contextlib.contextmanager
def _importable(folder: Path):
    """`fn: my_steps:thing` finds my_steps.py beside the YAML; the folder is on sys.path only
    while the module is imported, so building a pipeline leaves the process as it was."""
    added = str(folder) not in sys.path
    if added:
        sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(folder))


def _import_step(name: str, ref, base_dir: Path) -> StepFactory:
    if not isinstance(ref, str) or ":" not in ref:
        raise GraphError(f"step '{name}': type python needs fn: module:function")
    module_name, _, attr = ref.partition(":")
    try:
        with _importable(base_dir):
            target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:  # noqa: BLE001 - any failure to import the user's module (SyntaxError too)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GraphError(f"step '{name}': cannot import fn '{ref}' ({type(exc).__name__}: {first_line})") from None
    if not isinstance(target, StepFactory):
        raise GraphError(f"step '{name}': fn '{ref}' is not a step (decorate it with @step, @global_step or @source)")
    return target


def load_pipeline(path: str | Path, overrides: list[str] = (), input_path: str | None = None,
                  catalog: Mapping[str, Callable] = ENGINE_STEPS, edit: Callable[[dict], dict] | None = None,
                  expand: Expand | None = None) -> tuple[Pipeline, dict]:
    """Read, override and build a YAML pipeline; returns it with the resolved config. `edit`
    changes the config before the overrides apply (the recipe layer points LLMs at a server)."""
    config = read_config(path)
    if input_path is not None:
        config = replace_source(config, input_path)
    if edit is not None:
        config = edit(config)
    config = apply_overrides(config, list(overrides), expand)
    pipeline = build_pipeline(config, Path(path).parent, origin=str(path), catalog=catalog)
    return pipeline, config


def to_config(pipeline: Pipeline) -> dict:
    """The YAML-ready config of a pipeline (round-trips through build_pipeline)."""
    entries = []
    for step in pipeline.steps:
        entry: dict = {"name": step.name, "type": step.type_name}
        if step.type_name == "python":
            entry["fn"] = step.ref
        entry.update({k: v for k, v in step.options.items() if v is not None})
        for key, default in DEFAULT_SETTINGS.items():
            if getattr(step, key) != default:
                entry[key] = getattr(step, key)
        if step.parents:
            names = [p.name for p in step.parents]
            entry["after"] = names[0] if len(names) == 1 else names
        entries.append(entry)
    return {"name": pipeline.name, "batch_size": pipeline.batch_size, "steps": entries}


def to_yaml(pipeline: Pipeline) -> str:
    return yaml.safe_dump(to_config(pipeline), sort_keys=False, allow_unicode=True)
