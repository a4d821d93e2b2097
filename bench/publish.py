"""Publish latency: a mirror at official scale vs a one-component mirror.

The large mirror has 150 components, one of whose manifests lists 20,000
versions (generated directly with the library and signed once; its version
entries point to tarballs that do not exist, since only publish latency is
measured and the store checks only the tarballs a write touches). The same
small publish is timed in both mirrors, interleaved, in one run; then a new
version is published into the 20,000-version component.

Run: .venv/bin/python bench/publish.py [--rounds 7] [--no-write]
Writes the numbers under "## publish" in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tiup.hashing import FileInfo
from tiup.keys import PrivateKey, generate
from tiup.manifest.models import Component, ComponentItem, VersionItem
from tiup.manifest.names import component_id, version_str
from tiup.manifest.timefmt import format_time
from tiup.repository.admin import grant
from tiup.repository.init import init_mirror
from tiup.repository.keyring import KeyRing, load_keyring
from tiup.repository.publish import inspect_tarball, owner_signers, plan_publish
from tiup.repository.store import IndexFlags, Store, sign

NOW = datetime(2026, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
COMPONENTS = 150
BIG_VERSIONS = 20_000


def tarball(path: Path, body: bytes) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("hello")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
    return path


def fake_items(cid: str, count: int) -> dict[str, VersionItem]:
    released = format_time(NOW)
    return {
        f"v1.{i // 100}.{i % 100}": VersionItem(
            url=f"/{cid}-v1.{i // 100}.{i % 100}-linux-amd64.tar.gz", entry="hello",
            sha256=f"{i:064x}", sha512=f"{i:0128x}", length=1000 + i, released=released)
        for i in range(count)
    }


def build_mirror(path: Path, owner: PrivateKey, components: int, big: int) -> None:
    init_mirror(path, NOW)
    ring = load_keyring([path / "keys"])
    ring.add(owner, "owner")
    with Store(path, now=NOW, keyring=ring) as store:
        grant(store, "bench", "bench", [owner.keyinfo()])
        store.commit()
    with Store(path, now=NOW, keyring=ring) as store:
        idx = store.edit_index()
        for n in range(components):
            cid = "big" if big and n == 0 else f"small-{n}"
            comp = Component(expires=format_time(NOW.replace(year=2030)), version=1, id=cid,
                             description=f"component {n}",
                             platforms={"linux/amd64": fake_items(cid, big if cid == "big"
                                                                  else 3)})
            idx.components[cid] = ComponentItem(owner="bench", url=f"/{cid}.json")
            store.new_components[cid] = (comp, sign(comp, [owner]))
        store.commit()


def publish(path: Path, ring: KeyRing, cid: str, version: str, tb: Path) -> float:
    """One publish as the CLI does it (without process start-up); returns seconds."""
    start = time.perf_counter()
    inspect_tarball(tb, "hello")
    info = FileInfo.of_file(tb)
    with Store(path, now=NOW, keyring=ring) as store:
        plan = plan_publish(store, component_id(cid), version_str(version), "linux/amd64",
                            "hello", info, desc="", overwrite=False, now=NOW)
        assert plan.manifest is not None
        envelope = sign(plan.manifest, owner_signers(store, "bench", ring))
        store.publish_component(envelope, tb, tarball_name=plan.tarball_name,
                                flags=IndexFlags())
        store.commit()
    return time.perf_counter() - start


def write_section(text: str) -> None:
    path = REPO / "docs" / "benchmarks.md"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    head, sep, rest = old.partition("\n## publish\n")
    if sep:
        nxt = rest.find("\n## ")
        tail = rest[nxt:] if nxt >= 0 else "\n"
        new = head + "\n" + text + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    owner = generate()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        build_mirror(base / "large", owner, COMPONENTS, BIG_VERSIONS)
        build_mirror(base / "small", owner, 1, 0)
        setup = time.perf_counter() - t0
        big_size = max(p.stat().st_size for p in (base / "large").glob("*.big.json"))
        tb = tarball(base / "t.tar.gz", b"#!/bin/sh\necho hello\n" * 50)
        rings = {}
        for name in ("large", "small"):
            ring = load_keyring([base / name / "keys"])
            ring.add(owner, "owner")
            rings[name] = ring
        times: dict[str, list[float]] = {"large": [], "small": []}
        for r in range(args.rounds):
            for name in ("small", "large"):
                times[name].append(publish(base / name, rings[name], "small-0", f"v2.0.{r}", tb))
        big_times = [publish(base / "large", rings["large"], "big", f"v9.0.{r}", tb)
                     for r in range(3)]
    small = statistics.median(times["small"])
    large = statistics.median(times["large"])
    big = statistics.median(big_times)
    ratio = large / small
    lines = [
        "## publish",
        "",
        "`bench/publish.py` (library calls, as `tiup mirror publish` makes them, without "
        f"process start-up; median of {args.rounds} interleaved rounds; one run, "
        f"{datetime.now(UTC):%Y-%m-%d}).",
        "",
        "| mirror | publish a small component |",
        "|---|---|",
        f"| 1 component | {small * 1000:.1f} ms |",
        f"| {COMPONENTS} components, one with {BIG_VERSIONS:,} versions "
        f"({big_size / 1e6:.1f} MB manifest) | {large * 1000:.1f} ms |",
        "",
        f"- ratio large / small: **{ratio:.2f}x** (limit 1.5x)",
        f"- publish a new version into the {BIG_VERSIONS:,}-version component: "
        f"**{big * 1000:.0f} ms** (median of 3; reads, verifies, re-signs and rewrites the whole "
        "manifest)",
        f"- mirror generation: {setup:.1f} s",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text)
    if ratio > 1.5:
        raise SystemExit(f"FAIL: large/small ratio {ratio:.2f} > 1.5")


if __name__ == "__main__":
    main()
