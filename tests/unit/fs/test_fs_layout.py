"""runtime/fs/ has no import cycle: the interface (base.py) is below the package, which picks
an implementation (local.py, webhdfs.py), and below the implementations.  Read from the
source, function-level imports included, so a new import that closes a cycle fails here."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / "runtime" / "fs").glob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
            ".__init__")
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        out[module] = {d for d in deps if d == "runtime.fs" or d.startswith("runtime.fs.")}
    return out


def test_no_import_cycle_in_runtime_fs() -> None:
    graph = _graph()
    assert set(graph) >= {"runtime.fs", "runtime.fs.base", "runtime.fs.local",
                          "runtime.fs.webhdfs"}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

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


def test_the_interface_imports_nothing_of_the_package() -> None:
    assert _graph()["runtime.fs.base"] == set()
