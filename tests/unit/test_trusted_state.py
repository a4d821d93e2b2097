"""The closed TrustedState, in the style of python-tuf's test_trusted_metadata_set.py: calls
out of order are refused, cached copies prove rollbacks, a root rotation mid-session drops
what the old root verified (keeping version floors), and every failure leaves the state
exactly as it was."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from builders import (
    NOW,
    key,
    make_component,
    make_index,
    make_root,
    make_snapshot,
    make_timestamp,
    sign,
)
from tiup.errors import (
    ExpiredError,
    OrderError,
    RollbackError,
    SignatureError,
    TiupError,
)
from tiup.trust import TrustedState

ROOT1 = sign(make_root(), key(0), key(1), key(2))


def snap_bytes(index: int = 1, comp: int = 1, root: int = 1) -> bytes:
    return sign(make_snapshot(root_version=root, index=(index, 100000),
                              components={"hello": (comp, 100000)}), key(11))


def ts_bytes(snap: bytes, version: int = 1) -> bytes:
    return sign(make_timestamp(snap, version), key(12))


INDEX1 = sign(make_index(1), key(10))
COMP1 = sign(make_component(version=1), key(20))


def fresh() -> TrustedState:
    return TrustedState(ROOT1, NOW)


def view(st: TrustedState) -> tuple[object, ...]:
    """Everything observable about a state (identity of each held document)."""
    return (st.root, st.root_source, st.timestamp, st.snapshot, st.snapshot_raw, st.index,
            st.index_source, dict(st.components))


# ------------------------------------------------------------------ order


def _snapshot_first(st: TrustedState) -> None:
    st.update_snapshot(snap_bytes())


def _index_first(st: TrustedState) -> None:
    st.update_index(INDEX1, "1.index.json")


def _component_first(st: TrustedState) -> None:
    st.update_component("hello", COMP1, "1.hello.json")


def _timestamp_after_snapshot(st: TrustedState) -> None:
    snap = snap_bytes()
    st.update_timestamp(ts_bytes(snap))
    st.update_snapshot(snap)
    st.update_timestamp(ts_bytes(snap, 2))


def _snapshot_after_index(st: TrustedState) -> None:
    snap = snap_bytes()
    st.update_timestamp(ts_bytes(snap))
    st.update_snapshot(snap)
    st.update_index(INDEX1, "1.index.json")
    st.update_snapshot(snap)


def _second_index(st: TrustedState) -> None:
    snap = snap_bytes()
    st.update_timestamp(ts_bytes(snap))
    st.update_snapshot(snap)
    st.update_index(INDEX1, "1.index.json")
    st.update_index(INDEX1, "1.index.json")


def _second_component(st: TrustedState) -> None:
    snap = snap_bytes()
    st.update_timestamp(ts_bytes(snap))
    st.update_snapshot(snap)
    st.update_index(INDEX1, "1.index.json")
    st.update_component("hello", COMP1, "1.hello.json")
    st.update_component("hello", COMP1, "1.hello.json")


OUT_OF_ORDER: dict[str, Callable[[TrustedState], None]] = {
    "snapshot before timestamp": _snapshot_first,
    "index before snapshot": _index_first,
    "component before index": _component_first,
    "timestamp after snapshot": _timestamp_after_snapshot,
    "snapshot after index": _snapshot_after_index,
    "a second index": _second_index,
    "a second copy of a component": _second_component,
}


@pytest.mark.parametrize("name", list(OUT_OF_ORDER))
def test_out_of_order_updates_are_refused_and_change_nothing(name: str) -> None:
    st = fresh()
    steps = OUT_OF_ORDER[name]
    # run every step but the last one, remember the state, then the refused call
    calls: list[tuple[str, tuple[object, ...]]] = []

    class Recorder:
        def __getattr__(self, attr: str) -> Callable[..., object]:
            def call(*args: object, **kw: object) -> object:
                calls.append((attr, args))
                return None
            return call

    steps(Recorder())  # type: ignore[arg-type]
    for attr, args in calls[:-1]:
        getattr(st, attr)(*args)
    before = view(st)
    attr, args = calls[-1]
    with pytest.raises(OrderError, match="documents must be verified in order"):
        getattr(st, attr)(*args)
    assert view(st) == before


def test_the_state_has_no_public_setters() -> None:
    st = fresh()
    for attr in ("root", "timestamp", "snapshot", "index", "components", "root_source"):
        with pytest.raises(AttributeError):
            setattr(st, attr, None)
    with pytest.raises(TypeError):
        st.components["evil"] = None  # type: ignore[index]


# -------------------------------------------------------- cached copies


def _loaded(index_version: int = 1, comp_version: int = 1) -> TrustedState:
    st = fresh()
    snap = snap_bytes(index=index_version, comp=comp_version)
    st.update_timestamp(ts_bytes(snap))
    st.update_snapshot(snap)
    return st


def test_a_current_cached_index_is_taken() -> None:
    st = _loaded()
    assert st.offer_cached_index(INDEX1, "cache/index.json") is not None
    assert st.index is not None and st.index_source == "cache/index.json"


def test_an_older_cached_index_is_ignored() -> None:
    st = _loaded(index_version=2)
    assert st.offer_cached_index(INDEX1, "cache/index.json") is None
    assert st.index is None
    st.update_index(sign(make_index(2), key(10)), "2.index.json")


def test_a_newer_cached_index_proves_a_rollback() -> None:
    st = _loaded(index_version=2)
    newer = sign(make_index(3), key(10))
    before = view(st)
    with pytest.raises(RollbackError, match="older than the trusted version 3"):
        st.offer_cached_index(newer, "cache/index.json")
    assert view(st) == before


def test_a_newer_cached_index_by_a_stranger_proves_nothing() -> None:
    st = _loaded(index_version=2)
    forged = sign(make_index(3), key(30))  # not the index key
    assert st.offer_cached_index(forged, "cache/index.json") is None


def test_a_newer_cached_component_proves_a_rollback() -> None:
    st = _loaded(comp_version=1)
    st.update_index(INDEX1, "1.index.json")
    newer = sign(make_component(version=2), key(20))
    with pytest.raises(RollbackError, match="hello version 1, older than the trusted version 2"):
        st.offer_cached_component("hello", newer, "cache/hello.json")
    assert "hello" not in st.components


def test_an_older_cached_component_is_ignored_and_the_current_one_taken() -> None:
    st = _loaded(comp_version=2)
    st.update_index(INDEX1, "1.index.json")
    assert st.offer_cached_component("hello", COMP1, "cache/hello.json") is None
    st.update_component("hello", sign(make_component(version=2), key(20)), "2.hello.json")
    assert st.components["hello"].version == 2


# ------------------------------------------------------ root rotation


ROOT2 = sign(make_root(version=2, root_keys=(3, 4, 5), timestamp_key=13),
             key(0), key(1), key(3), key(4))


def test_rotation_mid_session_drops_what_the_old_root_verified() -> None:
    st = _loaded()
    st.update_index(INDEX1, "1.index.json")
    st.update_component("hello", COMP1, "1.hello.json")
    st.update_root(ROOT2, "2.root.json")
    assert st.root.version == 2
    assert (st.timestamp, st.snapshot, st.index, dict(st.components)) == (None, None, None, {})
    # the timestamp signed by the old timestamp key no longer verifies
    snap = snap_bytes(root=2)
    with pytest.raises(SignatureError):
        st.update_timestamp(ts_bytes(snap, 5))
    st.update_timestamp(sign(make_timestamp(snap, 5), key(13)))
    st.update_snapshot(snap)
    st.update_index(INDEX1, "1.index.json")


def test_version_floors_survive_a_rotation() -> None:
    st = fresh()
    snap = snap_bytes()
    st.update_timestamp(ts_bytes(snap, 7))
    st.update_root(ROOT2, "2.root.json")
    old = sign(make_timestamp(snap_bytes(root=2), 6), key(13))
    with pytest.raises(RollbackError, match="version number <"):
        st.update_timestamp(old)
    assert st.timestamp is None


def test_walk_roots_stops_at_the_end_and_reports_each_accepted_root() -> None:
    st = fresh()
    roots = {2: ROOT2}
    seen: list[str] = []
    count = st.walk_roots(lambda v: (roots[v], f"{v}.root.json") if v in roots else None,
                          lambda _data, name: seen.append(name))
    assert count == 1 and seen == ["2.root.json"] and st.root.version == 2


def test_walk_roots_keeps_the_roots_before_a_bad_one() -> None:
    bad3 = sign(make_root(version=3), key(0))  # not signed by root 2's keys
    roots = {2: ROOT2, 3: bad3}
    st = fresh()
    with pytest.raises(SignatureError):
        st.walk_roots(lambda v: (roots[v], f"{v}.root.json") if v in roots else None)
    assert st.root.version == 2 and st.root_source == "2.root.json"


# --------------------------------------------- every failure changes nothing


def _bad_calls() -> dict[str, tuple[Callable[[TrustedState], object], type[TiupError]]]:
    snap = snap_bytes()
    expired_ts = sign(make_timestamp(snap, 1, expires="2000-01-01T00:00:00Z"), key(12))
    return {
        "timestamp by a stranger": (lambda st: st.update_timestamp(
            sign(make_timestamp(snap), key(30))), SignatureError),
        "expired timestamp": (lambda st: st.update_timestamp(expired_ts), ExpiredError),
        "next root unsigned": (lambda st: st.update_root(
            sign(make_root(version=2), key(0)), "2.root.json"), SignatureError),
        "root skipping a version": (lambda st: st.update_root(
            sign(make_root(version=3), key(0), key(1)), "3.root.json"), RollbackError),
    }


@pytest.mark.parametrize("name", list(_bad_calls()))
def test_each_failure_leaves_the_state_unchanged(name: str) -> None:
    st = fresh()
    call, error = _bad_calls()[name]
    before = view(st)
    with pytest.raises(error):
        call(st)
    assert view(st) == before
