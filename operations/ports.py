"""Free local ports, for what starts throw-away servers: the benchmarks and the tests (which may import
operations; the core and the services never need one)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel picks it; it may be taken again
    before it is used, which the callers accept: they bind it within moments)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
