"""`tiup mirror` alone shows its help and exits 0 (behavior.md §5); an unknown word is an
error with a hint (a deliberate difference: TiUP exits 0 silently)."""

from __future__ import annotations


def test_mirror_alone_prints_help_and_exits_0(tiup) -> None:  # type: ignore[no-untyped-def]
    r = tiup("mirror")
    assert r.returncode == 0, r.output
    assert r.stdout.startswith("Usage: tiup mirror") and "clone" in r.stdout


def test_mirror_unknown_word_is_an_error_with_a_hint(tiup) -> None:  # type: ignore[no-untyped-def]
    r = tiup("mirror", "clnoe")
    assert r.returncode == 1 and "did you mean `tiup mirror clone`?" in r.stderr, r.output
