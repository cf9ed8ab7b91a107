"""Bounds on a request's head (request line and headers) for the gateway and the API: uvicorn's httptools
protocol with a size and a time limit.

uvicorn bounds a head only with its h11 parser; with httptools (the gateway's, and the API's by default)
llhttp keeps whatever a client sends before the blank line: one connection sending one endless header grew a
process by 150 MB in 90 s (its event loop busy copying it) and got no answer at all. A client that connects
and sends nothing, or half a head, held its connection forever (uvicorn's keep-alive timeout only runs between
requests), so a few thousand of them used up the process's file descriptors.

Now a request target (path and query) over ``http_max_target_bytes`` gets 414 (a 64 KB query string cost the
gateway ~27 ms of parsing before its key was even looked at), a head over ``http_max_head_bytes`` gets 431 and
one not whole ``http_head_timeout_s`` after the connection opened (the first request) or after its first byte
(the next ones) gets 408; both name the limit, and the connection closes (one that sent nothing at all is
closed without an answer). A body not whole ``http_body_timeout_s`` after its head (a client trickling it,
holding its connection as long as it likes) gets 408 too, unless the app has answered already, and the app's
next read is a disconnect. How large a body may be is the app's to bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from livemetrics.settings import get_settings
from livemetrics.unread_peer import AbortingClose, WriteStall

# BoundedHttpTools overrides uvicorn internals (parser callbacks, send_400_response, the cycle's fields):
# pyproject.toml admits only this uvicorn (tests/unit/test_lock_files.py keeps them equal).
UVICORN_VERSION = "0.55.0"


class _TargetTooLong(Exception):
    pass


class BoundedHttpTools(HttpToolsProtocol):
    """``HttpToolsProtocol`` (uvicorn's ``http=`` option) refusing heads too large or too slow."""

    # (head bytes, head s, body s, target bytes, send stall s): settings
    _limits: tuple[int, float, float, int, float] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if BoundedHttpTools._limits is None:
            s = get_settings()
            BoundedHttpTools._limits = (
                s.http_max_head_bytes,
                s.http_head_timeout_s,
                s.http_body_timeout_s,
                s.http_max_target_bytes,
                s.http_send_stall_s,
            )
        self._max_head, self._head_s, self._body_s, self._max_target, stall_s = BoundedHttpTools._limits
        self._stall = WriteStall(stall_s, self.loop)  # a client that reads nothing (livemetrics/unread_peer.py)
        self._refused: tuple[int, str] | None = None  # a limit a parser callback found broken
        self._in_head = True  # a new connection's first bytes are a head
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_body = False  # between a head and the end of its body

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(AbortingClose(transport, self.loop))  # type: ignore[arg-type]
        self._arm()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stall.paused(self.transport)

    def resume_writing(self) -> None:
        self._stall.resumed()
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stall.resumed()
        self._disarm()
        self._body_done()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True  # counted from here (what came before it in this read is counted already)

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self._max_target:
            self._refused = (414, f"request target (path and query) over {self._max_target} bytes")
            raise _TargetTooLong  # httptools stops parsing; uvicorn answers 400 through send_400_response
        super().on_url(url)

    def send_400_response(self, msg: str) -> None:
        if self._refused is not None:
            status, message = self._refused
            self._refused = None
            self._refuse(status, message)
            return
        super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._disarm()
        self._in_body = not self.parser.should_upgrade()  # a WebSocket's protocol takes over the connection
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._body_done()
        super().on_message_complete()

    def _body_done(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing():
            return
        if cycle is not None and not cycle.response_started:
            self._write(408, f"request body not received within {self._body_s:g} s of its head")
        if cycle is not None:
            cycle.disconnected = True  # the app's next read is a disconnect; what it sends goes nowhere
            cycle.message_event.set()
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        # While in a head, the parser gets at most what is left of the limit at a time: it never holds more.
        # (Out of a head, a whole read goes in; a next request beginning in it is counted from the next read.)
        while self._in_head and data:
            room = self._max_head - self._head_bytes
            if room <= 0:
                self._refuse(431, f"request head (request line and headers) over {self._max_head} bytes")
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
        if data:
            super().data_received(data)
        # The clocks start only for a head or body this read left unfinished: a request that comes whole
        # in one read (nearly all) schedules no timer.
        if self._in_head:
            self._arm()
        elif self._in_body and self._body_timer is None and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self._body_s, self._body_too_slow)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_s, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0:  # not a byte of a request: closed as an idle keep-alive connection is, silently
            self.transport.close()  # (a 408 there could be read by a browser as the answer to its next request)
            return
        self._refuse(408, f"request head not received within {self._head_s:g} s")

    def _refuse(self, status: int, message: str) -> None:
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a response under way on this connection: no second one into it
            return
        self._write(status, message)
        self.transport.close()

    def _write(self, status: int, message: str) -> None:
        body = message.encode()
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
