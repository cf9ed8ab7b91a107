"""The largest request body the API reads (ASGI middleware): its real bodies are small (a status note of
2,000 characters, a webhook URL of 2,048), but FastAPI reads a body whole, before the token is checked,
so without a limit one anonymous client could make the process hold gigabytes (the proxy's
client_max_body_size does not protect an API reached directly, as ``livemetrics up`` serves it).

A declared Content-Length over the limit is answered 413 before anything is read; a body streamed
without one (chunked) is cut off at the first chunk past the limit, so at most the limit plus one chunk
is ever held. Either way: 413 with ``detail`` naming the limit."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_MAX_BODY_BYTES = 64 * 1024
DETAIL = f"the request body is over {API_MAX_BODY_BYTES} bytes, the most this API reads"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while the app reads: an HTTPException, which FastAPI passes on as it is
    (any other error while reading a body becomes its 400 "error parsing the body")."""

    def __init__(self) -> None:
        super().__init__(413, DETAIL)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = API_MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited, send)


async def _refuse(send: Send) -> None:
    body = json.dumps({"detail": DETAIL}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
