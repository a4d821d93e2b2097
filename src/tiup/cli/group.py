"""A click group that lists its commands in a fixed order (TiUP's help order)."""

from __future__ import annotations

import click


class OrderedGroup(click.Group):
    """Lists commands in ``order`` first, then any others alphabetically."""

    def __init__(self, *args: object, order: tuple[str, ...] = (), **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.order = order

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = list(self.commands)
        rank = {name: i for i, name in enumerate(self.order)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))
