"""``tiup mirror clone``: copy (part of) a verified mirror into a directory, signed anew.

The modules, in the order a clone uses them:

* :mod:`~tiup.repository.clone.target` — may the clone write into its target?
* :mod:`~tiup.repository.clone.plan` — which versions it takes (pure), and its report;
* :mod:`~tiup.repository.clone.keys` — the clone's keys: reused, or fresh with a new mirror;
* :mod:`~tiup.repository.clone.fetch` and :mod:`~tiup.repository.clone.io` — parallel,
  resumable, verified downloads;
* :mod:`~tiup.repository.clone.bootstrap` — ``tiup-<os>-<arch>.tar.gz`` and
  ``local_install.sh``;
* :mod:`~tiup.repository.clone.flow` — the whole run (:func:`clone_mirror`), writing
  through the crash-safe store.
"""

from tiup.repository.clone.fetch import ProgressSink
from tiup.repository.clone.flow import check_not_self, clone_mirror
from tiup.repository.clone.plan import CloneOptions, CloneReport
from tiup.repository.clone.target import inspect_target

__all__ = ["CloneOptions", "CloneReport", "ProgressSink", "check_not_self", "clone_mirror",
           "inspect_target"]
