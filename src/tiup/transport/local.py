"""The local-directory transport: a mirror on disk, NFS, or a mounted share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tiup.errors import FetchError, NotFoundError, SizeLimitError
from tiup.transport.base import Fetcher

CHUNK = 1024 * 1024


class LocalFetcher(Fetcher):
    """Reads a mirror directory. Only regular files directly under it are served."""

    def __init__(self, address: str):
        self.address = address
        self.root = Path(address).expanduser().resolve()
        if not self.root.is_dir():
            raise FetchError(
                f"local mirror {address} is not a directory",
                file=address,
                hint="check the path, or run `tiup mirror set <dir|url>`",
            )

    def _path(self, resource: str) -> Path:
        name = resource.lstrip("/")
        if not name or "/" in name or name in (".", "..") or "\\" in name or "\0" in name:
            raise NotFoundError(f"{resource} is not a file name in mirror {self.address}")
        return self.root / name

    def _open(self, resource: str, max_size: int | None) -> tuple[int, int]:
        path = self._path(resource)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise NotFoundError(f"{resource} not found in mirror {self.address}",
                                file=str(path)) from exc
        except OSError as exc:
            raise FetchError(f"cannot read {path}: {exc.strerror or exc}", file=str(path)) from exc
        size = os.fstat(fd).st_size
        if max_size is not None and size > max_size:
            os.close(fd)
            raise SizeLimitError(
                f"local load from {path} failed, maximum size exceeded: {size} > {max_size}",
                file=str(path),
            )
        return fd, size

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        fd, _size = self._open(resource, max_size)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read() if max_size is None else fh.read(max_size + 1)
        if max_size is not None and len(data) > max_size:
            raise SizeLimitError(f"{resource} grew beyond {max_size} bytes while reading",
                                 file=resource)
        return data

    @contextmanager
    def _stream(
        self, resource: str, max_size: int | None, offset: int
    ) -> Iterator[Iterator[bytes]]:
        fd, _size = self._open(resource, max_size)
        with os.fdopen(fd, "rb", buffering=0) as fh:
            if offset:
                fh.seek(offset)

            def chunks() -> Iterator[bytes]:
                total = offset
                while True:
                    block = fh.read(CHUNK)
                    if not block:
                        return
                    total += len(block)
                    if max_size is not None and total > max_size:
                        raise SizeLimitError(f"{resource} exceeds {max_size} bytes", file=resource)
                    yield block

            yield chunks()

    def stream(
        self, resource: str, max_size: int | None, offset: int = 0
    ) -> AbstractContextManager[Iterator[bytes]]:
        return self._stream(resource, max_size, offset)

    def exists(self, resource: str) -> bool:
        try:
            return self._path(resource).is_file()
        except NotFoundError:
            return False

    def list_files(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())

    def local_path(self) -> str:
        return str(self.root)
