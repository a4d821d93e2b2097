"""Air-gap bundles: ``tiup mirror export`` and ``tiup mirror import`` (ADR 0011).

* :mod:`~tiup.repository.bundle.format` — the tar stream, its index, member names, parts;
* :mod:`~tiup.repository.bundle.export` — what the target lacks, written as one stream;
* :mod:`~tiup.repository.bundle.importer` — verified against the target's own trust,
  committed through the storage's ordered commit.
"""
