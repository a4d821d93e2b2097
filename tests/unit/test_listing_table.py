"""``tiup list``'s table (:func:`tiup.cli.listing.table_lines`) is TiUP's layout: the
one-format-per-table implementation gives the same lines as padding cell by cell."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tiup.cli.listing import table_lines

CELL = st.text(alphabet=st.sampled_from("ab {}:<>é日\t-"), max_size=6)


def reference(rows: list[list[str]]) -> list[str]:
    header = rows[0]
    table = [header, ["-" * len(h) for h in header], *rows[1:]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
            for row in table]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5).flatmap(
    lambda n: st.lists(st.lists(CELL, min_size=n, max_size=n), min_size=1, max_size=6)))
def test_table_lines_pad_like_ljust(rows: list[list[str]]) -> None:
    assert table_lines(rows) == reference(rows)


def test_empty_table() -> None:
    assert table_lines([]) == []
