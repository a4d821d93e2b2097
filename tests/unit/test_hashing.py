"""tiup.hashing: the one sha256 + sha512 hasher and the one "bytes vs version item" check.

Expected digests come from hashlib directly, never from the module under test.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiup import hashing
from tiup.errors import IntegrityError, TarballError
from tiup.hashing import FileInfo, Hasher, PipelinedHasher
from tiup.manifest.models import VersionItem

DATA = b"tiup hashing test payload\n" * 1000
S256 = hashlib.sha256(DATA).hexdigest()
S512 = hashlib.sha512(DATA).hexdigest()
OTHER = b"other bytes"


@dataclass(frozen=True)
class Declared:
    length: int = len(DATA)
    sha256: str = S256
    sha512: str = S512


def item(**changes: object) -> VersionItem:
    fields: dict[str, object] = {"url": "/hello-v1.0.0-linux-amd64.tar.gz", "entry": "hello",
                                 "sha256": S256, "sha512": S512, "length": len(DATA),
                                 "released": "2024-01-01T00:00:00Z"}
    fields.update(changes)
    return VersionItem(**fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------ hashing
def test_of_bytes_and_of_file_match_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(DATA)
    want = FileInfo(len(DATA), S256, S512)
    assert FileInfo.of_bytes(DATA) == want
    assert FileInfo.of_file(path) == want
    assert FileInfo.of_file(path, chunk=7) == want  # chunk boundaries change nothing
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert FileInfo.of_file(empty) == FileInfo(0, hashlib.sha256().hexdigest(),
                                               hashlib.sha512().hexdigest())


def test_of_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        FileInfo.of_file(tmp_path / "missing")


def test_streaming_equals_one_shot() -> None:
    hasher = Hasher()
    for i in range(0, len(DATA), 333):
        hasher.update(DATA[i:i + 333])
    assert hasher.length == len(DATA)
    assert hasher.info() == FileInfo.of_bytes(DATA)
    # info() does not end the stream
    hasher.update(OTHER)
    assert hasher.info() == FileInfo.of_bytes(DATA + OTHER)


def test_memoryview_and_bytearray_chunks() -> None:
    hasher = Hasher()
    view = memoryview(bytearray(DATA))
    hasher.update(view[:100])
    hasher.update(bytearray(DATA[100:200]))
    hasher.update(view[200:])
    assert hasher.info() == FileInfo.of_bytes(DATA)


@given(st.binary(max_size=4096), st.lists(st.integers(min_value=0, max_value=4096),
                                          max_size=12))
def test_any_chunking_equals_of_bytes(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    hasher = Hasher()
    for start, end in itertools.pairwise(bounds):
        hasher.update(data[start:end])
    assert hasher.info() == FileInfo.of_bytes(data)
    assert hasher.info() == FileInfo(len(data), hashlib.sha256(data).hexdigest(),
                                     hashlib.sha512(data).hexdigest())


@pytest.mark.parametrize("inline", [False, True])
def test_pipelined_hasher_equals_of_bytes(inline: bool) -> None:
    data = random.Random(3).randbytes(300_000)
    hasher = PipelinedHasher(buffers=3, size=4096)
    try:
        pos = 0
        rng = random.Random(5)
        while pos < len(data):
            i = hasher.take()
            n = min(rng.randint(1, 4096), len(data) - pos)
            hasher.buffers[i][:n] = data[pos:pos + n]
            hasher.update(i, 0, n, inline=inline)
            pos += n
        assert hasher.info() == FileInfo.of_bytes(data)
    finally:
        hasher.close()


# ------------------------------------------------------------------ the check
def test_matching_info_passes() -> None:
    info = FileInfo.of_bytes(DATA)
    assert hashing.mismatches("f", info, item()) == []
    assert hashing.matches(info, item()) and hashing.matches(info, Declared())
    hashing.check("f", info, item())
    hashing.check("f", info, info)  # a FileInfo is an Expected too


def test_hex_is_compared_case_insensitively() -> None:
    upper = item(sha256=S256.upper(), sha512=S512.upper())
    info = FileInfo.of_bytes(DATA)
    hashing.check("f", info, upper)
    hashing.check("f", FileInfo(info.length, S256.upper(), S512.upper()), item())
    assert hashing.matches(FileInfo(info.length, S256.upper(), S512), upper)


def test_sha512_is_optional_sha256_is_not() -> None:
    info = FileInfo.of_bytes(DATA)
    hashing.check("f", info, item(sha512=""))
    with pytest.raises(IntegrityError) as exc:
        hashing.check("f.tar.gz", info, item(sha256=""))
    assert exc.value.message == "the manifest gives no sha256 for f.tar.gz"
    assert exc.value.file == "f.tar.gz"
    assert not hashing.matches(info, item(sha256=""))


# kind, expected, actual, declared, bytes
CASES = [
    ("length", str(len(DATA)), str(len(DATA) + 1), item(), DATA + b"x"),
    ("length", str(len(DATA) - 1), str(len(DATA)), item(length=len(DATA) - 1), DATA),
    ("sha256", "ab" * 32, S256, item(sha256="ab" * 32), DATA),
    ("sha512", "cd" * 64, S512, item(sha512="cd" * 64), DATA),
]


@pytest.mark.parametrize(("kind", "expected", "actual", "declared", "data"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_every_mismatch_names_file_expected_and_actual(kind: str, expected: str, actual: str,
                                                       declared: VersionItem,
                                                       data: bytes) -> None:
    info = FileInfo.of_bytes(data)
    [wrong] = hashing.mismatches("hello.tar.gz", info, declared)
    assert (wrong.kind, wrong.expected, wrong.actual) == (kind, expected, actual)
    assert not hashing.matches(info, declared)
    with pytest.raises(IntegrityError) as exc:
        hashing.check("hello.tar.gz", info, declared, hint="a hint")
    message = exc.value.message
    assert message.startswith(f"{kind} of hello.tar.gz ")
    assert expected in message and actual in message and "does not match" in message
    assert exc.value.file == "hello.tar.gz" and exc.value.hint == "a hint"
    # the short reason names neither the file nor a digest
    assert "hello.tar.gz" not in wrong.reason and S256 not in wrong.reason
    assert kind in wrong.reason


def test_error_class_and_where_are_the_callers() -> None:
    info = FileInfo.of_bytes(OTHER)
    with pytest.raises(TarballError) as exc:
        hashing.check("x.tar.gz", info, Declared(length=len(OTHER)), error=TarballError,
                      where="its manifest at /src")
    assert exc.value.message == (f"sha256 of x.tar.gz does not match its manifest at /src: "
                                 f"expected {S256}, got {hashlib.sha256(OTHER).hexdigest()}")


def test_length_mismatch_is_reported_alone_other_mismatches_all() -> None:
    wrong_both = item(sha256="ab" * 32, sha512="cd" * 64)
    info = FileInfo.of_bytes(DATA)
    assert [m.kind for m in hashing.mismatches("f", info, wrong_both)] == ["sha256", "sha512"]
    assert [m.kind for m in hashing.mismatches("f", FileInfo.of_bytes(OTHER), wrong_both)
            ] == ["length"]
    # check raises the first, in the rule's order
    with pytest.raises(IntegrityError, match=r"^sha256 "):
        hashing.check("f", info, wrong_both)
    missing = hashing.mismatches("f", info, item(sha256="", sha512="cd" * 64))
    assert [(m.kind, m.missing) for m in missing] == [("sha256", True), ("sha512", False)]


def test_imports_only_the_standard_library_and_errors() -> None:
    source = Path(hashing.__file__).read_text()
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    tiup = {n for n in names if n.split(".")[0] == "tiup"}
    assert tiup == {"tiup.errors"}, tiup
    others = {n.split(".")[0] for n in names} - {"tiup", "__future__"}
    assert others <= set(sys.stdlib_module_names), others
