"""``python -m tiup`` runs the ``tiup`` command."""

from tiup.cli.entry import main

main()
