"""A TCP forwarder on 127.0.0.1 that cuts connections at random (deterministic by seed).

Point a client at ``proxy.url`` instead of the server's URL: every connection is forwarded
to the upstream port; with probability ``drop`` a connection is cut after a random number
of bytes (``min_bytes..max_bytes``, default 1..max_bytes) sent back to the client, inside
the status line, the headers or the body; the first ``cut_first`` connections are always
cut after ``min_bytes``-4000 bytes. ``cuts`` scripts exact cut points instead: the n-th
connection is cut after ``cuts[n]`` bytes (``None``: not cut), later ones follow the
random rule.

A cut inside a response header block is accepted by http.client as a complete header
with an empty, close-delimited body; the transport must treat that as transient.

:meth:`FlakyProxy.refuse` plays an upstream that dies: every open connection is reset
and every later one is reset as soon as it is accepted (counted in ``refused``).

Usage::

    with FlakyProxy(upstream_port, drop=0.3, seed=7) as proxy:
        ...proxy.url..., proxy.cut, proxy.connections
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading


class FlakyProxy:
    def __init__(self, upstream_port: int, *, drop: float = 0.3, max_bytes: int = 200_000,
                 seed: int = 1, cut_first: int = 2, min_bytes: int = 1,
                 cuts: list[int | None] | None = None):
        self.upstream_port = upstream_port
        self.drop = drop
        self.max_bytes = max_bytes
        self.min_bytes = max(1, min_bytes)
        self.cuts = list(cuts or [])
        self.rng = random.Random(seed)
        #: the first connections are always cut after 1000-4000 bytes (so a test proves something)
        self.cut_first = cut_first
        self.lock = threading.Lock()
        self.connections = 0
        self.cut = 0
        self.stopping = threading.Event()
        #: set by :meth:`refuse`; ``refused`` counts the connections reset since then
        self.refusing = threading.Event()
        self.refused = 0
        self._open: set[socket.socket] = set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.refusing.is_set():
                with self.lock:
                    self.refused += 1
                _reset(client)
                continue
            with self.lock:
                self.connections += 1
                limit: int | None
                if self.connections <= len(self.cuts):
                    limit = self.cuts[self.connections - 1]
                elif self.connections <= self.cut_first:
                    limit = self.rng.randint(self.min_bytes, max(self.min_bytes, 4000))
                else:
                    limit = (self.rng.randint(self.min_bytes, self.max_bytes)
                             if self.rng.random() < self.drop else None)
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client: socket.socket, limit: int | None) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        except OSError:
            client.close()
            return
        with self.lock:
            if self.refusing.is_set():
                self.refused += 1
                _reset(client)
                upstream.close()
                return
            self._open.update((client, upstream))
        done = threading.Event()

        def pump(src: socket.socket, dst: socket.socket, cap: int | None) -> None:
            sent = 0
            try:
                while not done.is_set():
                    data = src.recv(65536)
                    if not data:
                        break
                    if cap is not None and sent + len(data) >= cap:
                        dst.sendall(data[: cap - sent])
                        with self.lock:
                            self.cut += 1
                        break
                    dst.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                done.set()
                for s in (client, upstream):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        up = threading.Thread(target=pump, args=(client, upstream, None), daemon=True)
        up.start()
        pump(upstream, client, limit)
        up.join(5)
        with self.lock:
            self._open.difference_update((client, upstream))
        client.close()
        upstream.close()

    def refuse(self) -> None:
        """Die: reset every open connection, and every new one from now on."""
        with self.lock:
            self.refusing.set()
            victims = list(self._open)
        for s in victims:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.thread.join(2)

    def __enter__(self) -> FlakyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reset(conn: socket.socket) -> None:
    """Close ``conn`` with a TCP reset (SO_LINGER 0), as a dead server's host does."""
    import struct

    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
