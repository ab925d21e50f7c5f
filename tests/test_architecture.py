"""The floors of ARCHITECTURE.md, checked on the source: which package may import which, no
import circle between modules, no file over 500 lines, no import-time side effects.

Imports inside functions count: a lazy import is still an arrow in the design."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "notos"
FLOOR = {"errors", "overrides", "shipped", "version"}
# What each package may import besides itself and the floor (ARCHITECTURE.md, "The floors").
ALLOWED = {
    "data": set(),
    "llms": set(),
    "report": set(),
    "pipeline": {"data", "report"},
    "tasks": {"data", "llms", "pipeline"},
    "curate": {"data", "report", "pipeline"},
    "train": {"data", "llms", "report", "pipeline"},
    "evaluate": {"data", "llms", "report", "pipeline", "tasks"},
    "review": {"data", "report", "pipeline", "curate"},
    "recipes": {"data", "llms", "report", "pipeline", "tasks", "curate", "train", "evaluate"},
}
TOP = {"cli", "__init__"}  # the command line and the `notos` facade may import anything


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """The notos modules a file imports (`from notos.x import y` counts as notos.x.y when y is a module)."""
    name = module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    out = set()
    for target in found:
        if target == "notos":
            out.add(target)
        if not target.startswith("notos."):
            continue
        while target not in MODULES and target.count(".") > 1:  # notos.x.y.Name -> notos.x.y
            target = target.rpartition(".")[0]
        out.add(target)  # a module, or a package without __init__ (notos.curate)
    out.discard(name)
    return out


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_each_package_imports_only_the_floors_below_it():
    wrong = []
    for module, targets in GRAPH.items():
        package = package_of(module)
        if package in TOP or package in FLOOR:
            if package in FLOOR:
                wrong += [f"{module} -> {t}" for t in targets if package_of(t) not in FLOOR]
            continue
        assert package in ALLOWED, f"package notos.{package} is not in ARCHITECTURE.md's floors: add it there and here"
        for target in targets:
            other = package_of(target)
            if target == "notos" or other in TOP:
                wrong.append(f"{module} -> {target} (the facade and the CLI are the top floor)")
            elif other != package and other not in FLOOR and other not in ALLOWED[package]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that break the floors:\n" + "\n".join(sorted(wrong))


def test_the_engine_knows_no_task():
    users = {"tasks", "curate", "train", "evaluate", "review", "recipes", "llms"}
    arrows = [f"{m} -> {t}" for m, ts in GRAPH.items() if package_of(m) == "pipeline" for t in ts if package_of(t) in users]
    assert not arrows


def test_no_import_circle_between_modules():
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_no_source_file_over_500_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long


@pytest.mark.parametrize("module", ["notos.pipeline", "notos.llms.hf_local", "notos.recipes.catalog", "notos.evaluate.cli"])
def test_importing_changes_no_global_state(module):
    """No thread counts, seeds, memory pools or sys.path edits at import time."""
    probe = f"""
import sys, torch, pyarrow as pa
threads, pool, path = torch.get_num_threads(), pa.default_memory_pool().backend_name, list(sys.path)
seed = torch.initial_seed()
import {module}
assert torch.get_num_threads() == threads, "thread count"
assert pa.default_memory_pool().backend_name == pool, "arrow memory pool"
assert sys.path == path, "sys.path"
assert torch.initial_seed() == seed, "torch seed"
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
