"""The import rules of DESIGN.md as a table of allowed edges, checked on every module.

- base modules (errors, clock, fsutil, settings, hashing, ids) import no other layer;
- ``client`` and ``repository`` are siblings that never import each other;
- ``server`` never imports ``client``; ``transport`` knows only bytes (base modules);
- ``trust`` and ``manifest`` do no I/O;
- the environment is read only in settings.py, clock.py, client/profile.py and cli/;
- there are no import circles between modules, lazy (function-level) imports included.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tiup"

BASE = ("tiup.errors", "tiup.clock", "tiup.fsutil", "tiup.settings", "tiup.hashing",
        "tiup.ids")

#: layer → the layers it may import (base modules are always allowed).
ALLOWED: dict[str, set[str]] = {
    "manifest": set(),
    "keys": {"manifest"},
    "trust": {"manifest", "keys"},
    "transport": set(),
    "reader": {"manifest", "keys", "trust", "transport"},
    "client": {"manifest", "keys", "trust", "transport", "reader"},
    "repository": {"manifest", "keys", "trust", "transport", "reader"},
    "server": {"manifest", "keys", "trust", "transport", "reader", "repository"},
    "cli": {"manifest", "keys", "trust", "transport", "reader", "client", "repository",
            "server"},
}

#: Third-party or I/O modules a layer must not import.
FORBIDDEN = {
    "manifest": {"click", "rich", "urllib3", "http", "socket", "requests", "httpx", "os",
                 "pathlib", "io", "subprocess", "tiup.clock", "tiup.fsutil"},
    "trust": {"click", "rich", "urllib3", "http", "socket", "os", "pathlib", "subprocess",
              "tiup.clock", "tiup.fsutil"},
    "keys": {"click", "rich", "urllib3", "http", "socket"},
    "transport": {"click", "rich"},
    "reader": {"click", "rich"},
    "client": {"click", "rich"},
    "repository": {"click", "rich"},
    "server": {"click", "rich"},
}

#: Where the process environment may be read.
ENV_READERS = ("tiup.settings", "tiup.clock", "tiup.client.profile", "tiup.cli")


def layer_of(module: str) -> str | None:
    """The layer of a ``tiup.*`` module, "base" for base modules, None for ``tiup`` itself."""
    if module.startswith(BASE):
        return "base"
    if module == "tiup.__main__":
        return "cli"
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "tiup":
        return None
    return parts[1] if parts[1] in ALLOWED else "?"


@cache
def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def imports(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = pkg[: len(pkg) - node.level + 1]
                names.append(".".join([*base, node.module or ""]).rstrip("."))
            elif node.module:
                names.append(node.module)
                names.extend(f"{node.module}.{a.name}" for a in node.names
                             if f"{node.module}.{a.name}" in dict(modules()))
    return names


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _p in modules()])
def test_layer_imports(module: str, path: Path) -> None:
    own = layer_of(module)
    if own is None:
        return  # the package root
    assert own != "?", f"{module} is in no layer of the table: add it to ALLOWED"
    for name in imports(path, module):
        top = name.split(".")[0]
        if own != "base":
            assert name not in FORBIDDEN.get(own, set()) and top not in FORBIDDEN.get(
                own, set()), f"{module} ({own}) must not import {name}"
        if top != "tiup" or name == "tiup":
            continue
        other = layer_of(name)
        assert other is not None and other != "?", f"{module} imports unknown module {name}"
        if other in ("base", own):
            if own == "base" and other == "base":
                assert name in ("tiup.errors",) or name == module, \
                    f"base module {module} imports {name}: base modules import only errors"
            continue
        assert own != "base", f"base module {module} imports {name} ({other})"
        assert other in ALLOWED[own], f"{module} ({own}) must not import {name} ({other})"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _p in modules()])
def test_environment_is_read_only_where_allowed(module: str, path: Path) -> None:
    if module.startswith(ENV_READERS):
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                isinstance(node.value, ast.Name) and node.value.id == "os":
            raise AssertionError(f"{module} reads the environment (line {node.lineno}); "
                                 "take the value from tiup.settings")


def test_no_import_circles() -> None:
    """No cycle in the module graph, counting every import (lazy ones too)."""
    known = dict(modules())
    graph = {m: {n for n in imports(p, m) if n in known and n != m} for m, p in known.items()}
    # a package's __init__ re-exporting its submodules is not a cycle with them
    for m in graph:
        graph[m] = {n for n in graph[m] if not n.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = [*stack[stack.index(n):], n]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_rules_can_fail() -> None:
    """The checker itself refuses what DESIGN.md forbids."""
    assert "client" not in ALLOWED["repository"] and "repository" not in ALLOWED["client"]
    assert "client" not in ALLOWED["server"] and ALLOWED["transport"] == set()
    assert layer_of("tiup.reader") == "reader" and layer_of("tiup.settings") == "base"
    assert "os" in FORBIDDEN["trust"] and "os" in FORBIDDEN["manifest"]
