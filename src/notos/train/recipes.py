"""Recipes: a shipped name or a YAML file, validated against its dataclass, `--set` on top.

    kind: dpo                      # a plain recipe: the keys are the fields of DPORecipe
    beta: 0.1
    data: pairs.parquet            # relative paths are read from the YAML file's folder

    description: ...               # a staged recipe: stages run in order, each starting
    defaults: {method: lora}       # from the model the stage before it wrote
    stages:
      - {name: lamini, kind: sft, data: ...}
      - {name: dpo, kind: dpo, beta: 0.1}

Shipped recipes live in src/notos/recipes/train/ (their data in recipes/data/). `--set key=value`
(`notos.overrides`, the parser every command shares: values read as YAML) sets a key; on a
staged recipe it sets the key in every stage that has it, `--set STAGE.key=value` in one. An
unknown key is a one-line error that lists the valid ones.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from notos.errors import NotosError
from notos.overrides import parse_override
from notos.shipped import TRAINING_RECIPES
from notos.train.aliases import canonical
from notos.train.config import (
    DEVICES,
    LOSS_ON,
    MERGED_DTYPES,
    METHODS,
    PATH_KEYS,
    PRECISIONS,
    RECIPE_TYPES,
    REFERENCES,
    Common,
    DPORecipe,
    SFTRecipe,
)

STAGED_KEYS = ("description", "defaults", "stages")


@dataclass
class Stage:
    name: str
    recipe: Common


@dataclass
class Recipe:
    name: str
    origin: str
    stages: list[Stage]
    staged: bool  # written with `stages:` (else one stage named after its kind)
    raw: dict  # the resolved YAML, for config.yaml in the output


def shipped_names() -> list[str]:
    return sorted(p.stem for p in TRAINING_RECIPES.glob("*.yaml"))


def find_recipe(spec: str) -> Path:
    path = Path(spec)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise NotosError(f"recipe {spec}: no such file")
        return path
    shipped = TRAINING_RECIPES / f"{spec}.yaml"
    if shipped.exists():
        return shipped
    raise NotosError(f"recipe '{spec}': no such file and no shipped recipe of that name (recipes: {', '.join(shipped_names())})")


def read_yaml(path: Path) -> dict:
    from notos.pipeline.yaml_io import read_yaml_mapping

    return read_yaml_mapping(path, "recipe file", "a recipe must be a mapping (with 'kind', or with 'stages')")


def load_recipe(spec: str, overrides: list[str] = (), data: str | None = None) -> Recipe:
    path = find_recipe(spec)
    raw = _with_paths_from(read_yaml(path), path.parent.resolve())
    origin = str(path)
    if "stages" in raw:
        raw = _override_staged(raw, overrides, origin)
        if data is not None:
            raise NotosError(f"recipe {origin} has stages: give each its data with --set STAGE.data=PATH, not --data")
        stages = _build_stages(raw, origin)
        return Recipe(path.stem, origin, stages, True, raw)
    raw = _override_plain(raw, overrides, origin)
    if data is not None:
        raw["data"] = str(Path(data).resolve()) if not data.startswith("hf://") else data
    recipe = build(raw, origin)
    return Recipe(path.stem, origin, [Stage(recipe.kind, recipe)], False, raw)


def build(values: dict, origin: str) -> Common:
    kind = values.get("kind")
    if kind not in RECIPE_TYPES:
        raise NotosError(f"{origin}: 'kind' must be one of {', '.join(RECIPE_TYPES)} (got {kind!r})")
    cls = RECIPE_TYPES[kind]
    hints = typing.get_type_hints(cls)
    values = dict(canonical(key, value) for key, value in values.items())  # TRL's names too (aliases.py)
    for key, value in values.items():
        if key not in hints:
            raise NotosError(f"{origin}: unknown key '{key}' for a {kind} recipe (keys: {', '.join(hints)})")
        values[key] = value = _number(value, hints[key])
        if not _fits(value, hints[key]):
            raise NotosError(f"{origin}: key '{key}' has a bad value {value!r} (expected {_type_text(hints[key])})")
    recipe = cls(**values)
    validate(recipe, origin)
    return recipe


def validate(r: Common, origin: str) -> None:
    choices = {"method": METHODS, "precision": PRECISIONS, "device": DEVICES, "merged_dtype": MERGED_DTYPES}
    if isinstance(r, DPORecipe):
        choices["reference"] = REFERENCES
    if isinstance(r, SFTRecipe):
        choices["loss_on"] = LOSS_ON
    for key, allowed in choices.items():
        if getattr(r, key) not in allowed:
            raise NotosError(f"{origin}: key '{key}' must be one of {', '.join(allowed)} (got {getattr(r, key)!r})")
    for key in ("batch_size", "gradient_accumulation_steps", "max_length", "logging_steps", "save_steps"):
        if getattr(r, key) < 1:
            raise NotosError(f"{origin}: key '{key}' must be at least 1 (got {getattr(r, key)!r})")
    if not 0 <= r.eval_fraction < 1:
        raise NotosError(f"{origin}: key 'eval_fraction' must be in [0, 1) (got {r.eval_fraction!r})")
    if isinstance(r, DPORecipe):
        _validate_dpo(r, origin)


def _validate_dpo(r: DPORecipe, origin: str) -> None:
    losses = [r.loss_type] if isinstance(r.loss_type, str) else list(r.loss_type)
    known = dpo_loss_types()
    for loss in losses:
        if loss not in known:
            raise NotosError(f"{origin}: unknown loss_type '{loss}' (TRL's DPO losses: {', '.join(known)})")
    if r.reference == "implicit" and r.method == "full":
        raise NotosError(f"{origin}: reference: implicit needs method lora or qlora (the adapter switched off is the "
                         "reference); use reference: explicit or precomputed for full fine-tuning")
    if r.ref_model and r.reference != "explicit":
        raise NotosError(f"{origin}: ref_model is used only with reference: explicit (got reference: {r.reference})")


def dpo_loss_types() -> list[str]:
    """The loss names the installed TRL's DPOConfig documents (its trainer checks them only mid-step)."""
    import re

    from trl import DPOConfig

    help_text = next(f for f in dataclasses.fields(DPOConfig) if f.name == "loss_type").metadata.get("help", "")
    return re.findall(r"'([a-z_]+)'", help_text.split("If multiple")[0])


def _override_plain(raw: dict, overrides, origin: str) -> dict:
    raw = copy.deepcopy(raw)
    keys = typing.get_type_hints(RECIPE_TYPES.get(raw.get("kind"), Common))
    for item in overrides:
        key, value = parse_override(item, _is_path)
        if "." in key:
            raise NotosError(f"--set {item}: '{key.split('.')[0]}' is not a stage (this recipe has no stages)")
        key, value = canonical(key, value)
        if key not in keys:
            raise NotosError(f"--set {item}: unknown key '{key}' (keys: {', '.join(keys)})")
        raw[key] = value
    return raw


def _override_staged(raw: dict, overrides, origin: str) -> dict:
    raw = copy.deepcopy(raw)
    unknown = [k for k in raw if k not in STAGED_KEYS]
    if unknown:
        raise NotosError(f"{origin}: unknown key '{unknown[0]}' in a staged recipe (keys: {', '.join(STAGED_KEYS)})")
    stages = raw.get("stages")
    if not isinstance(stages, list) or not stages or not all(isinstance(s, dict) and s.get("name") for s in stages):
        raise NotosError(f"{origin}: 'stages' must be a non-empty list of mappings, each with a 'name'")
    by_name = {s["name"]: s for s in stages}
    for item in overrides:
        key, value = parse_override(item, _is_path)
        if "." in key:
            stage, key = key.split(".", 1)
            if stage not in by_name:
                raise NotosError(f"--set {item}: no stage named '{stage}' (stages: {', '.join(by_name)})")
            key, value = canonical(key, value)
            by_name[stage][key] = value
            continue
        key, value = canonical(key, value)
        takers = [s for s in stages if key in typing.get_type_hints(RECIPE_TYPES.get(s.get("kind"), Common))]
        if not takers:
            raise NotosError(f"--set {item}: no stage has a key '{key}' (keys: {', '.join(typing.get_type_hints(Common))})")
        for stage in takers:
            stage[key] = value
    return raw


def _build_stages(raw: dict, origin: str) -> list[Stage]:
    defaults = raw.get("defaults") or {}
    common = typing.get_type_hints(Common)
    for key in defaults:
        if key not in common or key == "kind":
            raise NotosError(f"{origin}: 'defaults' key '{key}' is not one every stage has (keys: {', '.join(common)})")
    out = []
    for entry in raw["stages"]:
        values = {**defaults, **{k: v for k, v in entry.items() if k != "name"}}
        out.append(Stage(str(entry["name"]), build(values, f"{origin}: stage '{entry['name']}'")))
    if len({s.name for s in out}) != len(out):
        raise NotosError(f"{origin}: two stages share a name")
    return out


def _is_path(key: str, value: str) -> bool:
    """Recipe keys that hold a local path; typed in a shell, they are read from its folder."""
    return key in PATH_KEYS and not value.startswith("hf://")


def _with_paths_from(raw: dict, base: Path) -> dict:
    """Relative paths in a YAML file are relative to that file."""
    def fix(entry: dict) -> dict:
        return {k: (str((base / v).resolve()) if isinstance(v, str) and _is_path(k, v) else v) for k, v in entry.items()}

    raw = fix(raw)
    if isinstance(raw.get("stages"), list):
        raw["stages"] = [fix(s) if isinstance(s, dict) else s for s in raw["stages"]]
    if isinstance(raw.get("defaults"), dict):
        raw["defaults"] = fix(raw["defaults"])
    return raw


def _number(value, hint):
    """YAML reads 1e-4 (no dot) as text; a float key takes it as the number it spells."""
    if isinstance(value, str) and float in (hint, *typing.get_args(hint)):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _fits(value, hint) -> bool:
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint) or (typing.Any,)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_text(hint) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")
