"""The clone's byte path: pipelined hashing, O_DIRECT part writes with carried tails, and
Chunks.readinto over a plain chunk iterator (local sources)."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from tiup.hashing import PipelinedHasher
from tiup.repository.clone.io import ALIGN, PartWriter
from tiup.transport import Chunks

DATA = random.Random(7).randbytes(3 * 1024 * 1024 + 1234)


def sizes(seed: int, total: int, top: int) -> list[int]:
    rng = random.Random(seed)
    out: list[int] = []
    while sum(out) < total:
        out.append(min(rng.randint(1, top), total - sum(out)))
    return out


def receive(path: Path, data: bytes, offset: int, seed: int, top: int,
            hasher: PipelinedHasher, direct: bool = True, background: bool = False
            ) -> PartWriter:
    """What the clone's download loop does: read (random amounts, as a socket returns
    them) into the hasher's buffers after the carried tail, write, hash."""
    rng = random.Random(seed)
    out = PartWriter(path, offset, hasher, direct=direct, background=background)
    pos = offset
    try:
        while pos < len(data):
            i = hasher.take()
            buf = hasher.buffers[i]
            start = len(out.carry)
            buf[:start] = out.carry
            n = min(rng.randint(1, top), len(buf) - start, len(data) - pos)
            buf[start:start + n] = data[pos:pos + n]
            out.write(i, start + n)
            hasher.update(i, start, start + n)
            pos += n
    finally:
        out.close()
    return out


def test_hasher_matches_hashlib_and_resets() -> None:
    hasher = PipelinedHasher(buffers=3, size=64 * 1024)
    try:
        for seed in range(3):
            hasher.sync()
            hasher.reset()
            pos = 0
            rng = random.Random(seed)
            for n in sizes(seed, len(DATA), 64 * 1024):
                i = hasher.take()
                hasher.buffers[i][:n] = DATA[pos:pos + n]
                # sha512 here or on the thread, switching at random: the order must hold
                hasher.update(i, 0, n, inline=rng.random() < 0.5)
                pos += n
            info = hasher.info()
            assert info.length == len(DATA)
            assert info.sha256 == hashlib.sha256(DATA).hexdigest()
            assert info.sha512 == hashlib.sha512(DATA).hexdigest()
    finally:
        hasher.close()


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("offset", [0, 4096 * 3, 12345])
def test_part_writer_writes_every_byte(tmp_path: Path, direct: bool, offset: int,
                                       background: bool) -> None:
    path = tmp_path / "x.part"
    path.write_bytes(DATA[:offset] + b"torn tail beyond the counted size")
    hasher = PipelinedHasher()
    try:
        out = receive(path, DATA, offset, offset, 300_000, hasher, direct, background)
    finally:
        hasher.close()
    assert out.size == len(DATA)
    assert path.read_bytes() == DATA


def test_part_writer_uses_o_direct_and_carries_the_partial_block(tmp_path: Path) -> None:
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this system")
    path = tmp_path / "x.part"
    path.write_bytes(DATA[:5000])
    hasher = PipelinedHasher()
    out = PartWriter(path, 5000, hasher)
    try:
        if not out.direct:
            pytest.skip(f"{tmp_path} does not support O_DIRECT")
        # resumed at a block boundary: the partial block is read back as the carry
        assert out.size == 4096 and out.carry == DATA[4096:5000]
    finally:
        out.close()
        hasher.close()
    assert out.size == 5000
    assert path.read_bytes() == DATA[:5000]


def test_part_writer_falls_back_where_o_direct_is_refused() -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or not hasattr(os, "O_DIRECT"):
        pytest.skip("no tmpfs at /dev/shm")
    path = shm / f"tiup-test-{os.getpid()}.part"
    try:
        hasher = PipelinedHasher()
        try:
            out = receive(path, DATA, 0, 1, 200_000, hasher)
        finally:
            hasher.close()
        assert out.size == len(DATA) and not out.direct
        assert path.read_bytes() == DATA
    finally:
        path.unlink(missing_ok=True)


def test_chunks_readinto_over_an_iterator() -> None:
    blocks = [DATA[i:i + 70_000] for i in range(0, len(DATA), 70_000)]
    body = Chunks(iter(blocks), start=0, requested=0)
    buf = memoryview(bytearray(ALIGN * 7))
    got = bytearray()
    while n := body.readinto(buf):
        got += buf[:n]
    assert bytes(got) == DATA
    # iterating after a partial readinto yields the rest first
    body = Chunks(iter(blocks), start=0, requested=0)
    small = memoryview(bytearray(100))
    assert body.readinto(small) == 100
    assert next(body) == DATA[100:70_000]
