"""``python -m tiup`` runs the ``tiup`` command."""

from tiup.cli.main import main

main()
