"""`notos.data` is the floor under the engine: it imports nothing from notos but `notos.errors`,
`notos.overrides` and itself, and its files import each other without a circle."""

import ast
from pathlib import Path

import notos.data

FOLDER = Path(notos.data.__file__).parent
ALLOWED = ("notos.errors", "notos.overrides")


def notos_imports(file: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):  # imports inside functions count too
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("notos")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("notos"):
            found.add(node.module)
    return found


def test_data_imports_only_the_floor():
    for file in FOLDER.glob("*.py"):
        for module in notos_imports(file):
            assert module in ALLOWED or module == "notos.data" or module.startswith("notos.data."), (file.name, module)


def test_no_circle_between_data_files():
    graph = {f.stem: {m.split(".")[2] for m in notos_imports(f) if m.startswith("notos.data.")} - {f.stem}
             for f in FOLDER.glob("*.py") if f.stem != "__init__"}

    def reaches(start, goal, seen):
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert not [name for name in graph if reaches(name, name, {name})]
