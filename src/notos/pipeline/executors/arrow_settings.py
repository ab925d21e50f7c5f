"""Process-wide Arrow settings for runs, applied by every executor when a run starts.

At the start of a run rather than at import, so that importing notos changes no global state
of the program that imports it. Idempotent: a program that runs many pipelines pays once.
"""

from __future__ import annotations

import os
import sys

import pyarrow as pa


class _HidePandas:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is hidden while pyarrow checks its list inputs")
        return None


def _spare_pandas_import() -> None:
    """pyarrow imports pandas (+50 MB RSS, ~0.4 s) the first time it converts a Python list,
    only to ask whether the list is a pandas object. Let that first check find no pandas:
    pyarrow then stops asking for lists, and still imports pandas whenever a caller really
    needs it (`Table.to_pandas`, `from_pandas`), because those calls retry the import."""
    if "pandas" in sys.modules:
        return
    hide = _HidePandas()
    sys.meta_path.insert(0, hide)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(hide)


_configured = False


def configure_arrow() -> None:
    """Called first by every run (RunState, which every executor starts with), before any rows
    become Arrow."""
    global _configured
    if _configured:
        return
    _configured = True
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        # Arrow's default mimalloc pool keeps freed batch buffers for reuse, so a long run's RSS
        # climbs with every committed part (191 vs 140 MB over 12k LLM rows, bench/README.md);
        # the system allocator hands them back. Users who set the variable keep their choice.
        pa.set_memory_pool(pa.system_memory_pool())
    _spare_pandas_import()
