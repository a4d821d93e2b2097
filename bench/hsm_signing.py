"""Signing latency per manifest: a key on a SoftHSM2 token vs a key file, same run.

A temporary SoftHSM2 token directory (``SOFTHSM2_CONF``) gets one token; ``tiup.keys.pkcs11``
generates an RSA-2048 key pair on it (private half not extractable) and a file key is
generated with ``tiup.keys``. Each signs the canonical bytes of three manifests of the
sizes tiup signs most: ``timestamp.json`` (0.4 KB), ``snapshot.json`` of a 150-component
mirror (4.7 KB) and a component manifest with 500 versions (188 KB). Timed:
:meth:`PrivateKey.signature` (RSA-PSS SHA-256 with the largest salt, then the
verification against the public key that every signature gets, ADR 0006), interleaved,
``--rounds`` rounds of ``--n`` signatures each; the median per signature is reported, and
the ratio token / file. Also timed once: opening the token (module load, C_Initialize,
login, key lookup), which a process pays on its first token signature.

Run: .venv/bin/python bench/hsm_signing.py [--rounds 7] [--n 50]
(needs softhsm2: scripts/setup-test-env installs it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def payloads() -> dict[str, bytes]:
    from tiup.manifest.canonical import encode_canonical

    ts = {"_type": "timestamp", "expires": "2030-01-01T00:00:00Z", "spec_version": "0.1.0",
          "version": 12345, "meta": {"/snapshot.json": {"hashes": {
              "sha256": "ab" * 32, "sha512": "cd" * 64}, "length": 12345}}}
    snap = {"_type": "snapshot", "expires": "2030-01-01T00:00:00Z", "spec_version": "0.1.0",
            "version": 0, "meta": {f"/comp{i}.json": {"version": i + 1} for i in range(150)}
            | {"/root.json": {"version": 1}, "/index.json": {"version": 1}}}
    versions = {f"v1.{i // 100}.{i % 100}": {"url": f"/big-v1.{i // 100}.{i % 100}-linux-amd64"
                                              ".tar.gz", "yanked": False, "entry": "big",
                                              "released": "2026-01-01T00:00:00Z",
                                              "dependencies": None,
                                              "hashes": {"sha256": "ef" * 32,
                                                         "sha512": "01" * 64},
                                              "length": 1000 + i}
                for i in range(500)}
    comp = {"_type": "component", "description": "bench", "expires": "2030-01-01T00:00:00Z",
            "id": "big", "nightly": "", "platforms": {"linux/amd64": versions},
            "spec_version": "0.1.0", "version": 1}
    return {name: encode_canonical(doc) for name, doc in
            (("timestamp", ts), ("snapshot", snap), ("component (500 versions)", comp))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=50, help="signatures per round and key")
    args = parser.parse_args()
    if not Path(MODULE).is_file():
        print(f"{MODULE} not found: install softhsm2 (scripts/setup-test-env)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="tiup-bench-pkcs11-"))
    (tmp / "tokens").mkdir()
    conf = tmp / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    (tmp / "pin").write_text("1234\n")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin",
                    "1234", "--so-pin", "12345678"], check=True, capture_output=True)
    uri = f"pkcs11:token=bench;object=tiup?pin-source={tmp / 'pin'}&module-path={MODULE}"

    from tiup.keys import generate
    from tiup.keys import pkcs11 as p11

    p11.generate_on_token(uri)
    p11.close_all()
    t0 = time.perf_counter()
    token = p11.token_key(uri)
    token.signature(b"first")
    first = time.perf_counter() - t0
    file_key = generate()
    docs = payloads()
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, payload in docs.items():
            for label, key in (("token", token), ("file", file_key)):
                t0 = time.perf_counter()
                for _i in range(args.n):
                    key.signature(payload)
                times.setdefault((name, label), []).append(
                    (time.perf_counter() - t0) / args.n)
    print(f"tiup bench/hsm_signing.py — {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, SoftHSM2 ({MODULE}), "
          f"salt {token.salt} bytes, {args.rounds} rounds × {args.n} signatures")
    print()
    print("| manifest | bytes | file key (ms) | SoftHSM2 token (ms) | ratio token/file |")
    print("|---|---|---|---|---|")
    for name, payload in docs.items():
        f = statistics.median(times[(name, "file")]) * 1000
        t = statistics.median(times[(name, "token")]) * 1000
        print(f"| {name} | {len(payload):,} | {f:.2f} | {t:.2f} | {t / f:.2f} |")
    print()
    print(f"First token signature of a process (module load, login, key lookup, sign): "
          f"{first * 1000:.1f} ms")
    p11.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
