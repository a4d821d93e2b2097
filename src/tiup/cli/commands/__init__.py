"""The ``tiup`` commands, one module per command group, loaded on demand.

:mod:`tiup.cli.registry` names the click command of each ``tiup`` and ``tiup
mirror`` subcommand; :class:`tiup.cli.group.LazyGroup` imports the module
when the command runs or its help is shown. Helpers shared by the mirror
write commands are in :mod:`.mirror_common`, whose ``open_writer`` picks the
writer of a local or an ``http(s)://`` mirror.
"""
