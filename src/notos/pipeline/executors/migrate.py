"""The one-time move of a run folder's cache to fingerprint scheme 2.

Scheme 1 fingerprinted every step by the source code of its function; scheme 2 fingerprints
built-in steps by type name and `version` (Step.code_identity), so refactoring notos no longer
voids every cache. A folder made under scheme 1 keeps its committed batches under the old
fingerprints, where a scheme-2 run would not look. So when a run opens a folder whose manifest
has no `fingerprint_scheme` (scheme 1), a step's old cache folder is renamed to its new
fingerprint's folder when all of these hold:

  - the old manifest has a step of that name, of the same kind, with the same parents;
  - its entry in the folder's pipeline.yaml (the resolved config of the old run) equals its
    new entry, leaving aside the runner settings (concurrency, row_concurrency, workers),
    which never entered a fingerprint;
  - the same holds for each of its ancestors; a source needs only an unchanged fingerprint
    (its batches are addressed by content, wherever they come from);
  - a Python step's code is unchanged: its old fingerprint is what its own hash (the same in
    both schemes) and its parents' old fingerprints give;
  - it is not a built-in global step: the old fingerprint of one covered the input data, which
    cannot be checked without the old code, so it computes again (once; its children keep
    their batches, which are addressed by the content of its output).

Anything not renamed computes again, as a changed step would. The run then writes
`fingerprint_scheme: 2` in the manifest, so this happens once per folder.
"""

from __future__ import annotations

import yaml

from notos.pipeline.decorators import RUNNER_SETTINGS
from notos.pipeline.graph import FINGERPRINT_SCHEME, Pipeline
from notos.pipeline.step import Step
from notos.pipeline.store import RunStore


def migrate_cache(store: RunStore, pipeline: Pipeline, fingerprints: dict[str, str], config_yaml: str,
                  data_ids: dict[str, str] | None = None) -> list[str]:
    """Rename the cache folders of `store` that still hold valid batches (see above), before
    the run opens the folder. Returns the names of the steps whose folder was renamed."""
    old = store.manifest()
    if not old or old.get("fingerprint_scheme", 1) >= FINGERPRINT_SCHEME:
        return []
    old_steps = old.get("steps") or {}
    old_entries = _entries((store.root / "pipeline.yaml").read_text() if (store.root / "pipeline.yaml").exists() else "")
    new_entries = _entries(config_yaml)
    unchanged: dict[str, bool] = {}
    renamed = []
    for step in pipeline.steps:  # parents first
        before = old_steps.get(step.name) or {}
        unchanged[step.name] = all(unchanged[p.name] for p in step.parents) and _same_step(
            pipeline, step, before, old_steps, old_entries.get(step.name), new_entries.get(step.name), fingerprints, data_ids)
        if not unchanged[step.name] or (step.kind == "global" and step.type_name != "python"):
            continue
        source = store.step_dir(step.name, before["fingerprint"])
        target = store.step_dir(step.name, fingerprints[step.name])
        if source != target and source.is_dir() and not target.exists():
            source.rename(target)
            renamed.append(step.name)
    return renamed


def _same_step(pipeline: Pipeline, step: Step, before: dict, old_steps: dict, old_entry, new_entry,
               fingerprints: dict[str, str], data_ids) -> bool:
    if not before.get("fingerprint") or before.get("kind") != step.kind or before.get("parents") != [p.name for p in step.parents]:
        return False
    if step.kind == "source":
        return before.get("fingerprint") == fingerprints[step.name]
    if old_entry is None or new_entry is None or _settings_aside(old_entry) != _settings_aside(new_entry):
        return False
    if step.type_name == "python":
        parents = [old_steps[p.name]["fingerprint"] for p in step.parents]
        return pipeline.fingerprint(step, parents, data_ids) == before.get("fingerprint")
    return True


def _entries(config_yaml: str) -> dict[str, dict]:
    """Step entries by name of a resolved pipeline config; none if it cannot be read."""
    try:
        config = yaml.safe_load(config_yaml) if config_yaml else None
    except yaml.YAMLError:
        return {}
    steps = config.get("steps") if isinstance(config, dict) else None
    return {e["name"]: e for e in steps or [] if isinstance(e, dict) and isinstance(e.get("name"), str)}


def _settings_aside(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in RUNNER_SETTINGS}
