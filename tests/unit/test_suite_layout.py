"""The layout of the suite: ``unit/`` stays pure (no servers, no subprocesses, no CLI runs),
and the helpers live in ``support/``, where tests and ``bench/`` import them by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
#: modules a unit test may not import: processes, sockets, servers, fault injection
NOT_IN_UNIT = {"subprocess", "socket", "socketserver", "http.server", "granian", "servers",
               "serverkit", "nginx", "faultproxy", "killpoints", "clirun", "multiprocessing"}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "importorskip" and node.args and \
                isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    return names


@pytest.mark.parametrize("path", sorted((TESTS / "unit").glob("test_*.py")),
                         ids=lambda p: p.name)
def test_unit_tests_stay_in_process(path: Path) -> None:
    tree = ast.parse(path.read_text())
    banned = sorted(n for n in _imports(tree) if n in NOT_IN_UNIT or
                    n.split(".")[0] in NOT_IN_UNIT)
    assert banned == [], f"{path.name} imports {banned}: it belongs in tests/integration"
    uses_cli = [node.lineno for node in ast.walk(tree)
                if isinstance(node, ast.arg) and node.arg == "tiup"]
    assert uses_cli == [], f"{path.name} runs the CLI (lines {uses_cli}): integration"


def test_helpers_are_in_support_and_tests_in_unit_or_integration() -> None:
    top = sorted(p.name for p in TESTS.glob("*.py"))
    assert top == ["conftest.py"], top
    assert not list((TESTS / "support").glob("test_*.py"))
    assert {p.parent.name for p in TESTS.rglob("test_*.py")} == {"unit", "integration"}


def test_no_bench_or_support_module_shadows_a_library() -> None:
    """``bench/`` runs with its own directory first on ``sys.path`` and ``support/`` is on
    the tests' path: a script named like a library (``bench/pkcs11.py`` once did) would be
    imported instead of it, by the benchmark itself or by any test after it."""
    import importlib.util
    import sys

    ours = {TESTS.parent / "bench", TESTS / "support"}
    clashes = []
    for folder in ours:
        for f in folder.glob("*.py"):
            if f.stem in sys.stdlib_module_names:
                clashes.append(f)
                continue
            spec = importlib.util.find_spec(f.stem)
            origin = Path(spec.origin).resolve() if spec and spec.origin else None
            if origin is not None and origin.parent not in ours:
                clashes.append(f)
    assert clashes == []
