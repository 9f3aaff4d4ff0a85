"""The house rules, checked: no import cycles (function-level imports count), no module
over 450 lines, an opening docstring in every module and package, and the status model
stays pure (relative imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "cpgw_tray"
MAX_LINES = 450


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every cpgw_tray module ``name`` imports, anywhere in the file (functions and
    TYPE_CHECKING blocks included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target in known:
                found.add(target)
            for alias in node.names:  # `from . import paths` names a module
                if f"{target}.{alias.name}" in known:
                    found.add(f"{target}.{alias.name}")
    found.discard(name)
    return found


def test_no_import_cycles() -> None:
    mods = modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    # a package's __init__ importing its own submodules lazily is not a cycle
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_is_short_and_says_what_it_owns(name: str) -> None:
    path = modules()[name]
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name}: over {MAX_LINES} lines"
    assert ast.get_docstring(ast.parse(text)), f"{path.name}: no opening docstring"


PURE = {"__future__", "json", "math", "dataclasses", "datetime", "enum", "typing", "re"}
PURE |= {"urllib.parse", "collections.abc", "functools", "zoneinfo", "itertools", "ipaddress"}
PURE |= {"urllib3.util", "urllib3.exceptions"}  # urls.py: URL parsing, no I/O


def outside_imports(path: Path) -> set[str]:
    """The modules ``path`` imports from outside cpgw_tray (relative ones are ours)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
    return {m for m in found if m.split(".")[0] != "cpgw_tray"}


def impure_imports(start: str, mods: dict[str, Path]) -> set[str]:
    """What ``start`` and every cpgw_tray module it reaches import beyond :data:`PURE`,
    each named with the module that imports it."""
    seen, todo, found = set(), [start], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found |= {f"{name}: {m}" for m in outside_imports(mods[name]) - PURE}
        todo.extend(imports_of(name, mods[name], set(mods)))
    return found


MODEL = sorted(n for n in modules() if n.startswith("cpgw_tray.model."))


@pytest.mark.parametrize("name", MODEL)
def test_the_model_is_pure(name: str) -> None:
    """Each module of the model (status.py and the rest), and every module of ours it
    imports (relative imports count), uses only pure parts of the standard library: no
    I/O, threads or pystray."""
    assert not impure_imports(name, modules())


def test_the_purity_check_counts_relative_imports(tmp_path: Path) -> None:
    """A status.py importing the client, relatively, would be seen."""
    mods = modules()
    fake = tmp_path / "cpgw_tray" / "model" / "status.py"
    fake.parent.mkdir(parents=True)
    fake.write_text('"""x"""\nfrom ..client.api import GatewayClient\n', encoding="utf-8")
    found = impure_imports("cpgw_tray.model.status", {**mods, "cpgw_tray.model.status": fake})
    assert "cpgw_tray.client.transport: requests" in found


@pytest.mark.parametrize("name", sorted(n for n, p in modules().items() if p.name == "__init__.py"))
def test_each_package_says_what_it_owns(name: str) -> None:
    text = modules()[name].read_text(encoding="utf-8")
    assert ast.get_docstring(ast.parse(text)), f"{name}: its __init__.py has no docstring"
