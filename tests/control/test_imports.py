"""The import graph of faults/, proxy/ and brownout/, read with ``ast``: no cycles, no backward layers.

Layers: ``brownout`` (control plane) → ``proxy`` (data plane) → ``faults`` (the fault
contract). A module may import its own layer and the layers below it, never above.
Every import counts, function-level ones too: a local import only hides a cycle. Imports
under ``if TYPE_CHECKING:`` never run, so they are left out of the cycle check (a type
annotation naming a partner module is not a cycle) but still obey the layers.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = ("faults", "proxy", "brownout")  # lowest first


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    type_only: bool


def modules(root: Path = REPO) -> dict[str, Path]:
    out = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """The modules of ``known`` that ``name`` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(), str(path))
    type_only = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from a import b``: the module a.b when there is one, else a itself.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            if target in known and target != name:
                out.append(Import(name, target, node.lineno, node.lineno in type_only))
    return out


def graph(root: Path = REPO) -> list[Import]:
    known = modules(root)
    return [imp for name, path in known.items() for imp in imports(name, path, known)]


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    adjacent: dict[str, set[str]] = {}
    for e in edges:
        adjacent.setdefault(e.source, set()).add(e.target)
        adjacent.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(adjacent):
        if root in index:
            continue
        work = [(root, iter(sorted(adjacent[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(adjacent[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def backward(edges: list[Import]) -> list[Import]:
    return [e for e in edges if _layer(e.target) > _layer(e.source)]


def _describe(component: list[str], edges: list[Import]) -> str:
    members = set(component)
    links = [f"{e.source}:{e.line} -> {e.target}" for e in edges if e.source in members and e.target in members]
    return "cycle " + " ↔ ".join(component) + " (" + "; ".join(links) + ")"


def test_no_import_cycles() -> None:
    edges = [e for e in graph() if not e.type_only]
    assert len(edges) > 200  # the walk found the tree (a broken walk would pass vacuously)
    found = cycles(edges)
    assert not found, "\n".join(_describe(c, edges) for c in found)


def test_imports_go_down_the_layers_only() -> None:
    edges = graph()
    wrong = backward(edges)
    assert not wrong, "\n".join(f"{e.source}:{e.line} imports {e.target} (a higher layer)" for e in wrong)


# -- the checker itself, on a tree made for it ----------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in LAYERS:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    return tmp_path


def test_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "brownout/runner/__init__.py": "",
        "brownout/runner/engine.py": "def go():\n    from brownout.runner.stress import run\n",
        "brownout/runner/stress.py": "from . import engine\n",
        "brownout/runner/ok.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engine import go\n",
    })
    edges = [e for e in graph(root) if not e.type_only]
    assert cycles(edges) == [["brownout.runner.engine", "brownout.runner.stress"]]
    assert [e for e in graph(root) if e.type_only] == [Import("brownout.runner.ok", "brownout.runner.engine", 3, True)]


@pytest.mark.parametrize(("source", "text", "target"), [
    ("faults/kind.py", "import proxy.server\n", "proxy.server"),
    ("proxy/server.py", "def f():\n    from brownout.cli import main\n", "brownout.cli"),
    ("faults/kind.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from brownout import cli\n", "brownout.cli"),
])
def test_checker_finds_a_backward_import(tmp_path: Path, source: str, text: str, target: str) -> None:
    root = _tree(tmp_path, {source: text, "proxy/server.py": "", "brownout/cli.py": ""} | {source: text})
    assert [e.target for e in backward(graph(root))] == [target]
