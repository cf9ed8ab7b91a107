"""The open-loop load of ``bench e2e``: one request of ``batch`` fresh page views every ``batch / rate``
seconds, whatever the gateway answers, so that the offered rate is the generator's and not the stack's.

A closed loop (send, await the 202, send the next) measures the stack's answer time, not what it holds.
Here each request is written on an idle keep-alive connection (opened as needed, up to
``max_connections``) without waiting for earlier answers. What the generator could not do is counted,
so a step proves that it offered its rate: the events it sent (``sent``), how late each send was
against its schedule (``late_ms``: the generator's own event loop was busy), and how many sends found
every connection waiting for an answer (``blocked``: the stack pushed back, which an open loop must
not hide). The bodies are encoded by msgspec and the HTTP/1.1 is written by hand (httpx's per-request
cost was a fifth of a core at 10,000 events/s on this machine, enough to miss the rate)."""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from dataclasses import dataclass, field

import msgspec

_LENGTH = re.compile(rb"content-length: *(\d+)", re.I)
_ACCEPTED = re.compile(rb'"accepted": *(\d+)')
_enc = msgspec.json.Encoder()
CATEGORIES = ("lamps", "rugs", "sofas", "kitchen", "garden")


@dataclass
class LoadCounts:
    sent: int = 0  # events written to the gateway
    accepted: int = 0  # events confirmed with 202
    errors: dict[int, int] = field(default_factory=dict)  # status -> requests
    blocked: int = 0  # sends that waited for a connection (every one was waiting for an answer)
    late_ms: list[float] = field(default_factory=list)  # per send: how late it left against its schedule


class PageViews:
    """Fresh page views: unique UUIDs (a fixed random prefix and a counter: no uuid4() per event), the
    current time, sessions spread over ``sessions`` ids."""

    def __init__(self, sessions: int = 200_000, seed: int | None = None):
        self.rng = random.Random(seed)
        self.prefix = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))[:24]
        self.n = 0
        self.sessions = sessions

    def batch(self, size: int) -> list[dict]:
        now, rng, out = int(time.time() * 1000), self.rng, []
        for _ in range(size):
            self.n += 1
            kind = rng.random()
            page = (
                {"type": "home", "path": "/"}
                if kind < 0.4
                else {"type": "category", "category": rng.choice(CATEGORIES), "path": "/c"}
                if kind < 0.8
                else {"type": "offer", "offer_id": f"o-{rng.randrange(50)}", "path": "/o"}
            )
            out.append(
                {
                    "event_id": f"{self.prefix}{self.n:012x}",
                    "type": "page_view",
                    "ts": now,
                    "session_id": f"bench-{rng.randrange(self.sessions):06d}-x",
                    "page": page,
                }
            )
        return out


def request(host: str, key: str, user_agent: str, body: bytes) -> bytes:
    return (
        f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nAuthorization: Bearer {key}\r\n"
        f"User-Agent: {user_agent}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], req: bytes, counts: LoadCounts) -> None:
    reader, writer = conn
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    body = await reader.readexactly(int(_LENGTH.search(head).group(1)))
    status = int(head[9:12])
    if status == 202:
        counts.accepted += int(_ACCEPTED.search(body).group(1))
    else:
        counts.errors[status] = counts.errors.get(status, 0) + 1


async def offer(
    port: int,
    keys: list[str],
    user_agent: str,
    rate: float,
    duration: float,
    batch: int = 100,
    max_connections: int = 64,
    counts: LoadCounts | None = None,
) -> LoadCounts:
    """Offer ``rate`` events/s for ``duration`` s to the gateway on 127.0.0.1:``port`` (keys in turn);
    return once every answer is in. ``counts`` (updated as it goes) may be given to watch it."""
    counts, views = counts or LoadCounts(), PageViews()
    idle: list = []
    free = asyncio.Condition()
    opened = [0]  # connections open or opening
    pending: set[asyncio.Task] = set()
    host = f"127.0.0.1:{port}"

    async def send(conn, req: bytes) -> None:
        try:
            if conn is not None:
                try:
                    await _exchange(conn, req, counts)
                except (OSError, asyncio.IncompleteReadError):
                    # An idle connection the gateway closed (its keep-alive timeout) before our request:
                    # the request was not read, so it goes again on a new connection.
                    conn[1].close()
                    conn = None
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
                await _exchange(conn, req, counts)
        except (OSError, asyncio.IncompleteReadError):
            counts.errors[0] = counts.errors.get(0, 0) + 1  # 0: the connection failed
            if conn is not None:
                conn[1].close()
            opened[0] -= 1
            conn = None
        async with free:
            if conn is not None:
                idle.append(conn)
            free.notify()

    interval = batch / rate
    start = time.monotonic()
    i = 0
    while True:
        due = start + i * interval
        if due >= start + duration:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        counts.late_ms.append(max(0.0, time.monotonic() - due) * 1000)
        req = request(host, keys[i % len(keys)], user_agent, _enc.encode({"events": views.batch(batch)}))
        async with free:
            if not idle and opened[0] >= max_connections:
                counts.blocked += 1
                await free.wait_for(lambda: idle or opened[0] < max_connections)
            conn = idle.pop() if idle else None
            if conn is None:
                opened[0] += 1
        task = asyncio.create_task(send(conn, req))
        pending.add(task)
        task.add_done_callback(pending.discard)
        counts.sent += batch
        i += 1
    if pending:
        await asyncio.wait(pending)
    for _, writer in idle:
        writer.close()
    return counts
