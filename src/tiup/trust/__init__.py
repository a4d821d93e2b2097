"""Trust: the rules (:mod:`tiup.trust.rules`) and the closed state (:mod:`tiup.trust.state`).

Pure: no file, network or clock access. Callers hand in bytes and a reference
time; every failure is a :class:`~tiup.errors.VerificationError` subclass (or a
:class:`~tiup.errors.ManifestError`) naming the file.
"""

from tiup.trust.rules import (
    INVALID_TIMESTAMP,
    MAX_ROOT_SIZE,
    MAX_TIMESTAMP_SIZE,
    Problems,
    RoleKeys,
    T,
    check_expiry,
    check_hashes,
    check_index_valid,
    check_root_valid,
    check_spec_version,
    check_timestamp_valid,
    check_type,
    component_problems,
    describe_root,
    index_problems,
    load,
    owner_keys,
    raise_first,
    role_keys,
    snapshot_problems,
    timestamp_problems,
    verify_next_root,
    verify_self_signed_root,
    verify_signatures,
)
from tiup.trust.state import NextRoot, TrustedState

__all__ = [
    "INVALID_TIMESTAMP",
    "MAX_ROOT_SIZE",
    "MAX_TIMESTAMP_SIZE",
    "NextRoot",
    "Problems",
    "RoleKeys",
    "T",
    "TrustedState",
    "check_expiry",
    "check_hashes",
    "check_index_valid",
    "check_root_valid",
    "check_spec_version",
    "check_timestamp_valid",
    "check_type",
    "component_problems",
    "describe_root",
    "index_problems",
    "load",
    "owner_keys",
    "raise_first",
    "role_keys",
    "snapshot_problems",
    "timestamp_problems",
    "verify_next_root",
    "verify_self_signed_root",
    "verify_signatures",
]
