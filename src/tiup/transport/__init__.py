"""Transport: one fetcher interface, with local-directory and HTTP(S) implementations.

Nothing above this layer looks at URL schemes: :func:`open_fetcher` picks
the implementation from the address. Every fetch is bounded by a size cap.
No trust decisions are made here.
"""

from tiup.transport.base import Fetcher, open_fetcher

__all__ = ["Fetcher", "open_fetcher"]
