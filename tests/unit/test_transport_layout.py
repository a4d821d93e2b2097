"""The shape of the transport and server packages: what they may import, and no circles.

``tests/unit/test_layers.py`` checks the order of the layers; this checks the narrower rules
of these two packages (every import counts, lazy ones included): the transport knows
bytes only, the server never reaches into the client, and neither package has an import
circle (``open_fetcher`` lives in ``transport/__init__``, ``create_app`` in ``server/run``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "tiup" or n.startswith("tiup.")}


#: What each package may import from tiup outside itself.
ALLOWED = {
    "tiup.transport": ("tiup.errors", "tiup.fsutil", "tiup.clock", "tiup.settings"),
    "tiup.server": ("tiup.errors", "tiup.fsutil", "tiup.clock", "tiup.settings",
                    "tiup.hashing", "tiup.ids",
                    "tiup.manifest", "tiup.keys", "tiup.trust", "tiup.transport",
                    "tiup.reader", "tiup.repository"),
}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    for module, path in _modules(package).items():
        for name in _imports(path):
            if name == "tiup" or name == package or name.startswith(package + "."):
                continue  # the package root (__version__) and the package itself
            assert name.startswith(ALLOWED[package]), f"{module} must not import {name}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_circle_inside_the_package(package: str) -> None:
    modules = _modules(package)
    graph = {m: {n for n in _imports(p) if n in modules and n != m}
             for m, p in modules.items()}

    def visit(node: str, path: list[str], done: set[str]) -> None:
        for nxt in graph[node]:
            assert nxt not in path, "import circle: " + " -> ".join([*path, nxt])
            if nxt not in done:
                visit(nxt, [*path, nxt], done)
        done.add(node)

    done: set[str] = set()
    for module in graph:
        visit(module, [module], done)


def test_server_app_and_api_do_not_import_each_other() -> None:
    modules = _modules("tiup.server")
    assert "tiup.server.api" not in _imports(modules["tiup.server.app"])
    assert "tiup.server.app" not in _imports(modules["tiup.server.api"])
    from tiup.server.run import create_app

    assert create_app.__module__ == "tiup.server.run"
