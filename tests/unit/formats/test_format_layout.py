"""formats/ is grouped by family and its imports point one way (formats/__init__.py):
registry -> message -> file -> codec, base -> runtime.  Read from the source, so a new
import that closes a cycle fails here, not in a reader's head."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: What each part of formats/ may import from formats/ (besides itself).
ALLOWED = {
    "formats.base": set(),
    "formats.codec": {"formats.base", "formats.mysqltypes"},
    "formats.file": {"formats.base", "formats.codec"},
    "formats.message": {"formats.base", "formats.codec", "formats.file", "formats.mysqltypes"},
    "formats.registry": {"formats.base", "formats.file", "formats.message"},
    "formats.mysqltypes": set(),
    "formats.clients.kafka": set(),
}


def _imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / "formats").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
            ".__init__")
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):  # TYPE_CHECKING ones count too
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        out[module] = {d for d in deps if d.startswith("formats.")}
    return out


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_imports_point_one_way_between_the_parts() -> None:
    wrong = sorted((m, d) for m, deps in _imports().items() for d in deps
                   if _part(d) != _part(m) and _part(d) not in ALLOWED[_part(m)])
    assert wrong == []


def test_no_import_cycle_between_modules() -> None:
    graph = _imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep in graph and not state.get(dep):
                visit(dep, stack)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if not state.get(module):
            visit(module, [])
    assert cycles == []
