"""Conformance with TiUP's real signed data (../shared/fixtures/tiup-testdata).

Every signature in every file verifies, the canonical re-encoding of every
``signed`` part equals the bytes in the file, and every key id recomputes.
"""

from __future__ import annotations

import base64
from pathlib import Path

from tiup import keys
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.envelope import envelope_bytes, parse_envelope
from tiup.manifest.models import Index, KeyInfo, Root, signed_from_dict


def _all_keys(mirror: Path) -> dict[str, KeyInfo]:
    """Every key declared anywhere in the fixture: both roots' roles and the index owners."""
    found: dict[str, KeyInfo] = {}
    for name in ("1.root.json", "root.json"):
        root = Root.from_dict(parse_envelope((mirror / name).read_bytes(), name).signed)
        for role in root.roles.values():
            found.update(role.keys)
    index = Index.from_dict(parse_envelope((mirror / "1.index.json").read_bytes(), "i").signed)
    for owner in index.owners.values():
        found.update(owner.keys)
    return found


def test_every_signature_verifies(fixture_mirror: Path) -> None:
    declared = _all_keys(fixture_mirror)
    verified = total = 0
    files = sorted(fixture_mirror.glob("*.json"))
    assert len(files) == 27
    for path in files:
        env = parse_envelope(path.read_bytes(), path.name)
        assert env.signatures, path.name
        total += len(env.signatures)
        for sig in env.signatures:
            info = declared[sig.keyid]
            key = keys.public_key(info, sig.keyid)
            assert key.verify(env.signed_raw, base64.b64decode(sig.sig)), (path.name, sig.keyid)
            # The same signature must fail over any other payload.
            assert not key.verify(env.signed_raw + b" ", base64.b64decode(sig.sig))
            verified += 1
    print(f"verified {verified} signatures in {len(files)} files")
    assert verified == total > len(files)


def test_canonical_reencoding_is_byte_identical(fixture_mirror: Path) -> None:
    for path in sorted(fixture_mirror.glob("*.json")):
        data = path.read_bytes()
        env = parse_envelope(data, path.name)
        assert encode_canonical(env.signed) == env.signed_raw, path.name
        # The typed model writes back the very same bytes (unknown members kept).
        model = signed_from_dict(env.signed, path.name)
        assert encode_canonical(model.to_dict()) == env.signed_raw, path.name
        assert envelope_bytes(env.signatures, model) == data.rstrip(b"\n"), path.name


def test_every_key_id_recomputes(fixture_mirror: Path) -> None:
    declared = _all_keys(fixture_mirror)
    # 5 root keys of v6 + 3 of v1, 3 + 3 role keys, 1 owner key.
    assert len(declared) == 15
    for keyid, info in declared.items():
        assert info.stored_id() == keyid
        # TiUP's KeyInfo.ID(): the hash over the Go-formatted public key.
        assert keys.public_key(info).keyid == keyid


def test_timestamp_bytes_are_tiup_sized(fixture_mirror: Path) -> None:
    data = (fixture_mirror / "timestamp.json").read_bytes()
    env = parse_envelope(data, "timestamp.json")
    assert len(env.signatures) == 1 and len(data) <= 1024
