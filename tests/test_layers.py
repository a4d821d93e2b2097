"""The import rules of DESIGN.md: each layer imports only the layers before it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "tiup"

#: Layers in order; a module may import its own layer and the ones before it.
LAYERS = [
    ("manifest", "tiup.manifest"),
    ("keys", "tiup.keys"),
    ("trust", "tiup.client.trust"),
    ("transport", "tiup.transport"),
    ("client", "tiup.client"),
    ("repository", "tiup.repository"),
    ("server", "tiup.server"),
    ("cli", "tiup.cli"),
]
#: Shared by every layer.
BASE = ("tiup.errors", "tiup.fsutil", "tiup.clock")

#: Third-party or I/O modules a pure layer must not import.
FORBIDDEN = {
    "manifest": {"click", "rich", "urllib3", "http", "socket", "requests", "httpx", "os",
                 "pathlib", "io", "subprocess", "tiup.clock", "tiup.fsutil"},
    "trust": {"click", "rich", "urllib3", "http", "socket", "os", "pathlib", "subprocess",
              "tiup.clock", "tiup.fsutil"},
    "keys": {"click", "rich", "urllib3", "http", "socket"},
    "transport": {"click", "rich"},
    "client": {"click", "rich"},
    "repository": {"click", "rich"},
}


def layer_of(module: str) -> int | None:
    best = None
    for i, (_name, prefix) in enumerate(LAYERS):
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(LAYERS[best][1])
        ):
            best = i
    return best


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
                base = module.split(".")[: -node.level] if path.name != "__init__.py" \
                    else module.split(".")[: len(module.split(".")) - node.level + 1]
                names.append(".".join([*base, node.module or ""]).rstrip("."))
            elif node.module:
                names.append(node.module)
    return names


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _p in modules()])
def test_layer_imports(module: str, path: Path) -> None:
    own = layer_of(module)
    if own is None:
        return  # base modules and the package root
    own_name = LAYERS[own][0]
    for name in imports(path, module):
        if name.startswith(BASE) or not name.startswith("tiup") or name == "tiup":
            top = name.split(".")[0]
            assert name not in FORBIDDEN.get(own_name, set()) and top not in FORBIDDEN.get(
                own_name, set()
            ), f"{module} ({own_name}) must not import {name}"
            continue
        other = layer_of(name)
        assert other is not None, f"{module} imports unknown tiup module {name}"
        assert other <= own, (
            f"{module} ({own_name}) imports {name} ({LAYERS[other][0]}), a later layer"
        )


def test_forbidden_rules_can_fail() -> None:
    """The checker itself flags a manifest module importing click."""
    assert "click" in FORBIDDEN["manifest"]
    assert layer_of("tiup.client.trust") == 2 and layer_of("tiup.client.updater") == 4
