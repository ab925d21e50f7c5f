"""`--set key=value`, the one parser every command shares (pipelines, training recipes).

The value is read as YAML (`0.2` is a float, `[a, b]` a list, `null` None); a path typed in a
shell is made absolute against the shell's folder, since the file it lands in lives elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from notos.errors import NotosError


def parse_override(item: str, is_path: Callable[[str, object], bool] = lambda key, value: False) -> tuple[str, object]:
    """(dotted key, value) of one `--set` item; `is_path(last_key, value)` says which values are paths."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise NotosError(f"--set {item}: expected key=value")
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    if isinstance(value, str) and is_path(key.split(".")[-1], value):
        value = str(Path(value).resolve())
    return key, value


def looks_like_path(key: str, value) -> bool:
    """Options named `path`, `*_path` or `*_file` hold local paths (URLs and absolute paths stay)."""
    return (isinstance(value, str) and (key == "path" or key.endswith(("_path", "_file")))
            and "://" not in value and not Path(value).is_absolute())
