"""A peer that never reads what the server sends (the gateway's and the API's uvicorn protocols:
livemetrics/http_head.py, livemetrics/ws_protocol.py).

uvicorn waits for a write buffer over its high-water mark to drain before it sends more, and every close of
its protocols is ``transport.close()``, which waits for the buffer to drain before the connection goes: with a
peer that never reads, both wait forever. A client (no key or token needed: ``/openapi.json``, the API docs'
assets, or a few requests pipelined on one connection) that asks for more than the kernels' buffers hold and
reads nothing held its connection, its file descriptor and its buffers until the process ended; a few
thousand such connections used up the process's descriptors for everyone.

``AbortingClose`` wraps a connection's transport: a close whose buffer has not drained within
``CLOSE_FLUSH_S`` aborts the connection. ``WriteStall`` aborts a connection whose write buffer stays over the
high-water mark (the peer takes nothing) for ``send_stall_s``.
"""

from __future__ import annotations

import asyncio
from typing import Any

# How long a closed connection may take to send what its write buffer still holds (the end of a response,
# a close frame) before it is aborted. A client that reads takes milliseconds.
CLOSE_FLUSH_S = 5.0


class AbortingClose:
    """A connection's transport whose ``close()`` aborts it when its write buffer has not drained within
    ``CLOSE_FLUSH_S`` (module text); everything else is the transport's own."""

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._abort_at: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        self._transport.close()
        if self._abort_at is None and self._transport.get_write_buffer_size() > 0:
            self._abort_at = self._loop.call_later(CLOSE_FLUSH_S, self._abort_if_stuck)

    def _abort_if_stuck(self) -> None:
        if self._transport.get_write_buffer_size() > 0:
            self._transport.abort()


class WriteStall:
    """Aborts a connection whose write buffer stays over the high-water mark for ``stall_s``: called from
    the protocol's ``pause_writing`` (``paused``) and ``resume_writing`` / ``connection_lost`` (``resumed``)."""

    def __init__(self, stall_s: float, loop: asyncio.AbstractEventLoop):
        self.stall_s = stall_s
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None

    def paused(self, transport: Any) -> None:
        if self._timer is None:
            self._timer = self._loop.call_later(self.stall_s, transport.abort)

    def resumed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
