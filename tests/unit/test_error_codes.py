"""Errors carry what code needs to tell cases apart (``code``, ``expired_file``, ``mirror``):
no code in ``src/`` branches on the text of a message or hint."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tiup.errors import ExpiredError, TiupError

SRC = Path(__file__).resolve().parents[2] / "src" / "tiup"


def _reads_message_text(node: ast.AST) -> bool:
    """``x in exc.message``, ``exc.message.startswith(...)``, ``exc.hint == ...`` etc."""
    def is_text(n: ast.AST) -> bool:
        return isinstance(n, ast.Attribute) and n.attr in ("message", "hint")

    if isinstance(node, ast.Compare):
        return any(is_text(n) for n in (node.left, *node.comparators)) and any(
            isinstance(op, ast.In | ast.NotIn | ast.Eq | ast.NotEq) for op in node.ops)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("startswith", "endswith", "find", "index") and \
            is_text(node.func.value)
    return False


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_branching_on_message_text(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        assert not _reads_message_text(node), \
            f"{path.relative_to(SRC)}:{node.lineno} tells errors apart by their text: " \
            "give the error a code instead"


def test_the_scan_can_fail() -> None:
    tree = ast.parse("if 'x' in exc.message: pass\nexc.hint.startswith('a')")
    assert sum(_reads_message_text(n) for n in ast.walk(tree)) == 2


def test_publisher_hint_follows_the_file_that_expired_not_the_message() -> None:
    from tiup.cli.commands.mirror_common import explain_expired

    keys = ExpiredError("the keys of role timestamp for timestamp.json expired",
                        file="timestamp.json", expired_file="root.json")
    assert "rotate --days N" in (explain_expired(keys, "http://m").hint or "")
    index = ExpiredError("x", file="3.index.json")
    assert "renew --index" in (explain_expired(index, "http://m").hint or "")
    ts = ExpiredError("timestamp.json expired", file="timestamp.json")
    out = explain_expired(ts, "http://m")
    assert out.message.startswith("mirror http://m: ") and out.mirror == "http://m"
    assert "renew`" in (out.hint or "")
    again = explain_expired(out, "http://m")
    assert again.message == out.message  # named once, never twice


def test_every_error_class_lives_in_errors_py() -> None:
    def subclasses(cls: type[TiupError]) -> list[type[TiupError]]:
        out = []
        for sub in cls.__subclasses__():
            out += [sub, *subclasses(sub)]
        return out

    import tiup.cli.main  # noqa: F401 - load the CLI and, lazily, nothing else
    for cls in subclasses(TiupError):
        assert cls.__module__ == "tiup.errors", f"{cls.__qualname__} is in {cls.__module__}"
