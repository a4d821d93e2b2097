"""The trust rules as a table: each scenario feeds bytes to the pure state machine."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from builders import (
    EARLIER,
    LATER,
    NOW,
    key,
    make_component,
    make_index,
    make_root,
    make_snapshot,
    make_timestamp,
    pub,
    sign,
    sign_raw,
)
from tiup.errors import (
    ExpiredError,
    IntegrityError,
    ManifestError,
    RollbackError,
    SignatureError,
    TiupError,
)
from tiup.manifest.envelope import Signature, signed_bytes
from tiup.manifest.models import KeyInfo
from tiup.manifest.timefmt import format_time
from tiup.trust import TrustedState, verify_self_signed_root

ROOT1 = make_root()


def state(root: bytes | None = None) -> TrustedState:
    return TrustedState(root or sign(ROOT1, key(0), key(1), key(2)), NOW)


def full_chain(st: TrustedState, *, ts_version: int = 1, index_version: int = 1,
               comp_signer: int = 20) -> None:
    """Load a consistent timestamp → snapshot → index → component chain."""
    snap = sign(make_snapshot(root_version=st.root.version, index=(index_version, 100000)),
                key(11))
    st.update_timestamp(sign(make_timestamp(snap, ts_version), key(12)))
    st.update_snapshot(snap)
    st.update_index(sign(make_index(index_version), key(10)), f"{index_version}.index.json")
    st.update_component("hello", sign(make_component(), key(comp_signer)), "1.hello.json")


def ok_chain() -> None:
    full_chain(state())


def rollback_timestamp() -> None:
    st = state()
    snap = sign(make_snapshot(), key(11))
    st.update_timestamp(sign(make_timestamp(snap, 5), key(12)))  # e.g. the cached copy
    st.update_timestamp(sign(make_timestamp(snap, 4), key(12)))


def rollback_index() -> None:
    st = state()
    snap = sign(make_snapshot(index=(3, 100000)), key(11))
    st.update_timestamp(sign(make_timestamp(snap), key(12)))
    st.update_snapshot(snap)
    st.update_index(sign(make_index(2), key(10)), "3.index.json")


def rollback_snapshot_root() -> None:
    root2 = make_root(version=2)
    st = state()
    st.update_root(sign(root2, key(0), key(1), key(2)), "2.root.json")
    snap = sign(make_snapshot(root_version=1), key(11))
    st.update_timestamp(sign(make_timestamp(snap), key(12)))
    st.update_snapshot(snap)


def freeze_expired_timestamp() -> None:
    st = state()
    snap = sign(make_snapshot(), key(11))
    st.update_timestamp(sign(make_timestamp(snap, expires=EARLIER), key(12)))


def wrong_type() -> None:
    st = state()
    snap = sign(make_snapshot(), key(12))  # a snapshot signed with the timestamp key
    st.update_timestamp(snap)


def threshold_not_met() -> None:
    TrustedState(sign(ROOT1, key(0)), NOW)  # root threshold 2, one signature


def duplicate_signatures() -> None:
    payload = signed_bytes(ROOT1)
    sig = key(0).signature(payload)
    TrustedState(sign_raw(ROOT1, [sig, sig, key(1).signature(payload)]), NOW)


def bad_signature_by_known_key() -> None:
    payload = signed_bytes(ROOT1)
    bad = Signature(key(2).keyid, base64.b64encode(b"\x00" * 256).decode())
    sigs = [key(0).signature(payload), key(1).signature(payload), bad]
    TrustedState(sign_raw(ROOT1, sigs), NOW)


def unknown_keyid_ignored() -> None:
    payload = signed_bytes(ROOT1)
    stranger = key(30).signature(payload)
    TrustedState(sign_raw(ROOT1, [stranger, key(0).signature(payload),
                                  key(1).signature(payload)]), NOW)


def rotation_add_and_remove() -> None:
    st = state()
    root2 = make_root(version=2, root_keys=(1, 2, 3), threshold=2)
    st.update_root(sign(root2, key(1), key(2), key(3)), "2.root.json")
    root3 = make_root(version=3, root_keys=(3, 4, 5), threshold=2)
    st.update_root(sign(root3, key(2), key(3), key(4), key(5)), "3.root.json")
    assert st.root.version == 3
    st.check_root_fresh()


def rotation_without_old_keys() -> None:
    st = state()
    root2 = make_root(version=2, root_keys=(3, 4, 5), threshold=2)
    st.update_root(sign(root2, key(3), key(4), key(5)), "2.root.json")


def rotation_without_new_keys() -> None:
    st = state()
    root2 = make_root(version=2, root_keys=(3, 4, 5), threshold=2)
    st.update_root(sign(root2, key(0), key(1), key(3)), "2.root.json")


def rotation_skips_version() -> None:
    st = state()
    st.update_root(sign(make_root(version=3), key(0), key(1)), "2.root.json")


def rotation_expiry_backwards() -> None:
    st = state()
    earlier = format_time(NOW + timedelta(days=10))
    st.update_root(sign(make_root(version=2, expires=earlier), key(0), key(1)), "2.root.json")


def expired_intermediate_root() -> None:
    st = TrustedState(sign(make_root(expires=EARLIER), key(0), key(1)), NOW)
    st.update_root(sign(make_root(version=2), key(0), key(1)), "2.root.json")
    st.check_root_fresh()
    full_chain(st)


def expired_final_root() -> None:
    st = TrustedState(sign(make_root(expires=EARLIER), key(0), key(1)), NOW)
    st.check_root_fresh()


def expired_root_expires_role_keys() -> None:
    st = TrustedState(sign(make_root(expires=EARLIER), key(0), key(1)), NOW)
    snap = sign(make_snapshot(), key(11))
    st.update_timestamp(sign(make_timestamp(snap), key(12)))


def component_by_non_owner() -> None:
    full_chain(state(), comp_signer=21)


def component_wrong_id() -> None:
    st = state()
    snap = sign(make_snapshot(), key(11))
    st.update_timestamp(sign(make_timestamp(snap), key(12)))
    st.update_snapshot(snap)
    st.update_index(sign(make_index(), key(10)), "1.index.json")
    other = replace(make_component(), id="evil")
    st.update_component("hello", sign(other, key(20)), "1.hello.json")


def owner_shadows_role() -> None:
    st = state()
    snap = sign(make_snapshot(), key(11))
    st.update_timestamp(sign(make_timestamp(snap), key(12)))
    st.update_snapshot(snap)
    st.update_index(sign(make_index(owners={"timestamp": 20},
                                    components={"hello": "timestamp"}), key(10)), "1.index.json")


def snapshot_hash_mismatch() -> None:
    st = state()
    snap = sign(make_snapshot(), key(11))
    st.update_timestamp(sign(make_timestamp(snap), key(12)))
    st.update_snapshot(sign(make_snapshot(index=(2, 100000)), key(11)))


def oversized_timestamp() -> None:
    st = state()
    snap = sign(make_snapshot(), key(11))
    ts = make_timestamp(snap)
    ts.unrecognized["padding"] = "x" * 2000
    st.update_timestamp(sign(ts, key(12)))


def index_over_length_cap() -> None:
    st = state()
    snap = sign(make_snapshot(index=(1, 50)), key(11))
    st.update_timestamp(sign(make_timestamp(snap), key(12)))
    st.update_snapshot(snap)
    st.update_index(sign(make_index(), key(10)), "1.index.json")


def unsupported_key_type() -> None:
    root = make_root()
    ed = KeyInfo("ed25519", "ed25519", {"public": "00" * 32})
    root.roles["root"].keys[ed.stored_id()] = ed
    TrustedState(sign(root, key(0), key(1)), NOW)


def keyid_mismatch() -> None:
    root = make_root()
    info = root.roles["root"].keys.pop(key(0).keyid)
    root.roles["root"].keys["ab" * 32] = info
    TrustedState(sign(root, key(0), key(1), key(2)), NOW)


def one_key_listed_twice_counts_once() -> None:
    root = make_root(root_keys=(0,), threshold=2)
    k = key(0)
    # The same RSA key stored a second time with a PEM lacking its final newline.
    alt = KeyInfo("rsa", "rsassa-pss-sha256", {"public": pub(k).public.rstrip("\n")})
    root.roles["root"].keys[alt.stored_id()] = alt
    payload = signed_bytes(root)
    raw = k.sign(payload)
    sigs = [Signature(k.keyid, base64.b64encode(raw).decode()),
            Signature(alt.stored_id(), base64.b64encode(raw).decode())]
    TrustedState(sign_raw(root, sigs), NOW)


def malformed_base64() -> None:
    payload = signed_bytes(ROOT1)
    sigs = [key(0).signature(payload), Signature(key(1).keyid, "!!not base64!!")]
    TrustedState(sign_raw(ROOT1, sigs), NOW)


def malformed_json() -> None:
    TrustedState(b'{"signatures":[],"signed":{"_type":"root",', NOW)


def tampered_payload() -> None:
    data = sign(ROOT1, key(0), key(1), key(2))
    TrustedState(data.replace(b'"version":1', b'"version":2'), NOW)


def case_variant_member() -> None:
    data = sign(ROOT1, key(0), key(1), key(2))
    TrustedState(data.replace(b'"version":1', b'"Version":1'), NOW)


SCENARIOS: list[tuple[str, Callable[[], None], type[TiupError] | None, str]] = [
    ("valid chain", ok_chain, None, ""),
    ("rollback: timestamp", rollback_timestamp, RollbackError, "version number <"),
    ("rollback: index differs from snapshot", rollback_index, RollbackError, "snapshot.json"),
    ("rollback: snapshot names older root", rollback_snapshot_root, RollbackError, "older"),
    ("freeze: expired timestamp", freeze_expired_timestamp, ExpiredError, "expired"),
    ("wrong _type", wrong_type, SignatureError, "expected _type timestamp"),
    ("threshold not met", threshold_not_met, SignatureError, "not enough signatures (1)"),
    ("duplicate signatures", duplicate_signatures, SignatureError, "duplicate"),
    ("bad signature by a known key", bad_signature_by_known_key, SignatureError, "invalid"),
    ("unknown key id ignored", unknown_keyid_ignored, None, ""),
    ("rotation adding and removing keys", rotation_add_and_remove, None, ""),
    ("rotation not signed by old keys", rotation_without_old_keys, SignatureError, "enough"),
    ("rotation not signed by new keys", rotation_without_new_keys, SignatureError, "enough"),
    ("rotation skipping a version", rotation_skips_version, RollbackError, "should be: 2"),
    ("rotation moving expiry back", rotation_expiry_backwards, RollbackError, "mis-ordered"),
    ("expired intermediate root allowed", expired_intermediate_root, None, ""),
    ("expired final root rejected", expired_final_root, ExpiredError, "expired"),
    ("expired root expires role keys", expired_root_expires_role_keys, ExpiredError,
     "keys of role timestamp"),
    ("component signed by non-owner", component_by_non_owner, SignatureError, "enough"),
    ("component with another id", component_wrong_id, SignatureError, "expected component id"),
    ("owner id shadows a role", owner_shadows_role, SignatureError, "shadows a role"),
    ("snapshot hash mismatch", snapshot_hash_mismatch, IntegrityError, "sha256"),
    ("timestamp over 1024 bytes", oversized_timestamp, IntegrityError, "1024"),
    ("index over its length cap", index_over_length_cap, IntegrityError, "declared 50"),
    ("unsupported key type", unsupported_key_type, SignatureError, "unsupported key type"),
    ("key id does not match key", keyid_mismatch, SignatureError, "does not match"),
    ("one key listed twice counts once", one_key_listed_twice_counts_once, SignatureError,
     "not enough signatures (1) for threshold 2"),
    ("malformed base64 signature", malformed_base64, SignatureError, "base64"),
    ("malformed JSON", malformed_json, ManifestError, "not valid JSON"),
    ("tampered payload", tampered_payload, SignatureError, "invalid signature"),
    ("member differing only in case", case_variant_member, ManifestError, "only in case"),
]


@pytest.mark.parametrize(("name", "scenario", "error", "fragment"), SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_trust_rules(name: str, scenario: Callable[[], None], error: type[TiupError] | None,
                     fragment: str) -> None:
    if error is None:
        scenario()
        return
    with pytest.raises(error) as info:
        scenario()
    assert fragment in info.value.message


def test_failed_update_leaves_state_unchanged() -> None:
    st = state()
    snap = sign(make_snapshot(), key(11))
    st.update_timestamp(sign(make_timestamp(snap, 3), key(12)))
    before = st.timestamp
    with pytest.raises(RollbackError):
        st.update_timestamp(sign(make_timestamp(snap, 2), key(12)))
    assert st.timestamp is before


def test_self_signed_root_ignores_expiry() -> None:
    _env, root = verify_self_signed_root(sign(make_root(expires=EARLIER), key(0), key(1)),
                                         "root.json")
    assert root.expires == EARLIER and LATER > EARLIER


def test_a_root_walk_ends_on_not_found_and_on_an_object_stores_403() -> None:
    """``probe_root``: 404, and the 403 a bucket gives anonymous readers for a missing
    object, both mean "no next root"; any other failure is raised."""
    from tiup.errors import FetchError, NotFoundError
    from tiup.reader import probe_root
    from tiup.transport.base import FORBIDDEN

    def failing(exc: Exception):  # type: ignore[no-untyped-def]
        def fetch(name: str, cap: int) -> bytes:
            raise exc
        return fetch

    assert probe_root(lambda name, cap: b"{}" if name == "2.root.json" else b"", 2) == \
        (b"{}", "2.root.json")
    assert probe_root(failing(NotFoundError("gone")), 3) is None
    assert probe_root(failing(FetchError("denied", code=FORBIDDEN)), 3) is None
    with pytest.raises(FetchError) as other:
        probe_root(failing(FetchError("HTTP 500", reason="HTTP 500")), 3)
    assert other.value.code != FORBIDDEN
