"""The folders show the processes: web and worker use core and llm, never each other, and no circle.

Imports inside functions count too: a circle hidden behind one still ties two modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "jobsvc"


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Each jobsvc module and the jobsvc modules it imports, anywhere in its code."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                # `from package import module` depends on the module; `from module import name`
                # on the module.
                targets |= {
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                }
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        resolved = set()
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target not in {name, "jobsvc"}:
                resolved.add(target)
        graph[name] = resolved
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "top"


# (importer's folder, imported folder) pairs that would run the architecture backwards.
FORBIDDEN = {
    ("web", "worker"),
    ("worker", "web"),
    ("core", "web"),
    ("core", "worker"),
    ("llm", "web"),
    ("llm", "worker"),
    ("llm", "core"),
}


def test_web_and_worker_never_import_each_other_and_core_and_llm_import_neither():
    wrong = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if (_layer(module), _layer(target)) in FORBIDDEN
    ]
    assert not wrong, wrong


def test_no_module_is_tied_to_another_in_a_circle():
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not circles, circles
