"""The ``tiup`` command line: a thin layer over the library.

Framework (imported on every run, kept light):

- :mod:`~tiup.cli.entry`: the entry point; answers ``--version`` and the root
  help, and starts installed components, without click;
- :mod:`~tiup.cli.driver`: the driver's own argument scan (flags before the
  component or command);
- :mod:`~tiup.cli.registry`: every command's location and short help;
- :mod:`~tiup.cli.fasthelp`: the root help, rendered as click renders it;
- :mod:`~tiup.cli.main`: the root click group, ``tiup help``, the dispatch;
- :mod:`~tiup.cli.group`: :class:`~tiup.cli.group.LazyGroup`, which imports a
  command's module only when it is used;
- :mod:`~tiup.cli.errors` (errors to exit codes, in one place),
  :mod:`~tiup.cli.output` (stdout for data, stderr for the rest),
  :mod:`~tiup.cli.clientctx` (profile, updater, tables for client commands).

Commands: :mod:`tiup.cli.commands`, one module per command group.
"""
