"""SoftHSM2 tokens for the PKCS#11 tests: a real PKCS#11 module, tokens in a temporary
directory (``SOFTHSM2_CONF``), ``softhsm2-util`` to create them and opensc's
``pkcs11-tool`` to inspect them.

One token directory per test process (a pytest-xdist worker): SoftHSM2 reads its
configuration when a process first initialises the module, so every test of a worker
sees the same directory and gives its tokens unique labels (:meth:`SoftHSM.token`).

``scripts/setup-test-env`` installs softhsm2 and opensc; where the module is absent the
tests fail under CI (``CI`` set) and are skipped with the reason elsewhere.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"
SO_PIN = "87654321"
_SHIM_SRC = Path(__file__).resolve().parent / "pkcs11shim" / "faulty.c"
_counter = itertools.count(1)


def require() -> None:
    """Fail (CI) or skip (a user's machine) when SoftHSM2 or pkcs11-tool is missing."""
    missing = [what for what, ok in (
        (MODULE, Path(MODULE).is_file()),
        ("softhsm2-util", shutil.which("softhsm2-util") is not None),
        ("pkcs11-tool", shutil.which("pkcs11-tool") is not None)) if not ok]
    if not missing:
        return
    why = f"{', '.join(missing)} not installed (scripts/setup-test-env installs softhsm2, opensc)"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@dataclass
class Token:
    label: str
    pin_file: Path
    hsm: SoftHSM

    def uri(self, obj: str = "tiup", *, pin: bool = True, extra: str = "") -> str:
        """``pkcs11:token=…;object=…?pin-source=…`` (``pin=False``: no PIN in it)."""
        query = [f"pin-source={self.pin_file}"] if pin else []
        if extra:
            query.append(extra)
        return f"pkcs11:token={self.label};object={obj}" + ("?" + "&".join(query) if query
                                                             else "")

    def tool(self, *args: str) -> str:
        """``pkcs11-tool`` on this token (logged in); its stdout."""
        r = subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", self.label,
                            "--login", "--pin", PIN, *args], env=self.hsm.env(),
                           capture_output=True, text=True, timeout=60, check=True)
        return r.stdout


class SoftHSM:
    def __init__(self, root: Path):
        self.root = root
        (root / "tokens").mkdir(parents=True, exist_ok=True)
        self.conf = root / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {root / 'tokens'}\n"
                             "objectstore.backend = file\nlog.level = ERROR\n")
        self.pin_file = root / "pin"
        self.pin_file.write_text(PIN + "\n")
        self._shim: Path | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf), "TIUP_PKCS11_MODULE": MODULE}

    def token(self, prefix: str = "t") -> Token:
        """A new initialised token with a label unique in this test run."""
        label = f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}"
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                        "--pin", PIN, "--so-pin", SO_PIN], env=self.env(), check=True,
                       capture_output=True, timeout=60)
        return Token(label, self.pin_file, self)

    def faulty_module(self) -> Path:
        """The module with the faults SoftHSM2 cannot produce (``pkcs11shim/faulty.c``:
        no RSA-PSS, a PIN retry counter), built once with cc; faults chosen by the
        environment."""
        if self._shim is None:
            out = self.root / "faulty.so"
            subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-I/usr/include/p11-kit-1",
                            "-o", str(out), str(_SHIM_SRC), "-ldl"], check=True,
                           capture_output=True, timeout=120)
            self._shim = out
        return self._shim
