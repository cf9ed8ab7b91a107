"""Bounds on what a WebSocket client may send the API, below the app: uvicorn's websockets (sans-I/O)
protocol with a budget of frames and a bound on what it reads after its close.

uvicorn paces a client's data messages by the app (it stops reading the socket while a message waits for
the app), but not the frames the protocol answers or gathers itself, nor anything after the server's close:
- pings: each is answered at once, as fast as they come;
- empty continuation frames: gathered into the message they continue, which ``ws_max_size`` never
  completes (they add no bytes), as fast as they come, each one a list entry;
- anything after the server sent its close (a refusal, a revoked token, a socket over its message budget):
  read and discarded, as fast as it comes, for up to 10 s, waiting for the client's reply.
One socket with a seller's token doing any of these kept the API's event loop busy: another seller's
dashboard got no snapshot for over 30 s (``tests/integration/test_api_ws_floods.py``).

Now a socket may send ``FRAMES_BURST`` frames of any kind, then ``FRAMES_PER_S`` a second (the dashboard
sends none but pongs to the server's pings, one per 20 s; a client message is paced further by the app,
``api/ws_limits.py``); past that it is closed with 1008 naming the limit, and the connection is dropped.
After the server's close, at most ``AFTER_CLOSE_BYTES`` are read before the connection is dropped without
waiting for the client's reply.

A client that never reads: the app's pushes stop at the write buffer's high-water mark (uvicorn waits for
it to drain), the next keepalive ping goes unanswered and uvicorn closes the connection. But every close
of uvicorn's protocol (keepalive timeout, the close handshake's timeout, a refusal) is
``transport.close()``, which waits for the write buffer to drain before it lets the connection go: with
a peer that never reads, never. The socket, its descriptor, its buffers, the app's handler (waiting to
send) and its seller's and client's socket slots stayed until the process ended. Now a connection whose
close still has data buffered after ``CLOSE_FLUSH_S`` is aborted (``livemetrics/unread_peer.py``)
(``tests/integration/test_api_ws_never_reads.py``).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from livemetrics.token_bucket import TokenBucket
from livemetrics.unread_peer import AbortingClose

FRAMES_BURST = 100
FRAMES_PER_S = 5.0
AFTER_CLOSE_BYTES = 64 * 1024


class BoundedWebSockets(WebSocketsSansIOProtocol):
    """``WebSocketsSansIOProtocol`` (uvicorn's ``ws=`` option) with a frame budget per socket and a bound on
    what it reads after its close (module text). uvicorn is pinned (livemetrics/http_head.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frames = TokenBucket(FRAMES_BURST, FRAMES_PER_S)
        self._after_close = 0
        self._dropped = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(AbortingClose(transport, self.loop))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._dropped:
            return
        if self.close_sent and self.handshake_complete:
            self._after_close += len(data)
            if self._after_close > AFTER_CLOSE_BYTES:  # no reply to our close, only more frames: drop it
                self._drop()
                return
        super().data_received(data)

    def _frame(self) -> bool:
        """Spend one frame of the budget; False (and the socket closed) when it is over."""
        if self._dropped:
            return False
        if self._frames.spend():
            return True
        reason = f"too many frames: at most {FRAMES_BURST}, then {FRAMES_PER_S:g} a second"
        if not self.close_sent and not self.transport.is_closing():
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1008, "reason": reason})
            self.conn.fail(1008, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        self._drop()
        return False

    def _drop(self) -> None:
        self._dropped = True
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        self.transport.close()

    def handle_text(self, event: Frame) -> None:
        if self._frame():
            super().handle_text(event)

    def handle_bytes(self, event: Frame) -> None:
        if self._frame():
            super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        if self._frame():
            super().handle_cont(event)

    def handle_ping(self) -> None:
        if self._frame():
            super().handle_ping()

    def handle_pong(self, event: Frame) -> None:
        if self._frame():
            super().handle_pong(event)

    def handle_close(self, event: Frame) -> None:
        if not self._dropped:
            super().handle_close(event)
