"""The Stripe webhook route reads its body in time linear in its chunks: it gathered them with `body +=
chunk`, copying the body so far for each, so a body sent a byte a TCP segment cost the square of its size
(256 KiB, the route's limit: ~1.3 s of the event loop here before the signature was even checked, against
~0.15 s now, most of it the ASGI messages themselves)."""

from __future__ import annotations

import asyncio
import time

from livemetrics.provider_keys import new_provider_endpoint
from livemetrics.settings import Settings
from producers.gateway.app import create_gateway

KEK = "k" * 40
REC = new_provider_endpoint("shop-s", "stripe", "whsec_" + "a" * 32, KEK)


class Registry:
    ready = True

    def authenticate_id(self, key_id):
        return REC if key_id == REC.key_id else None

    def authenticate(self, presented, kinds):
        return None


def cpu_to_answer(app, chunks: int) -> tuple[float, int]:
    """CPU seconds for the route to answer a body sent as ``chunks`` one-byte ASGI messages, and its status."""
    messages = iter([{"type": "http.request", "body": b"x", "more_body": True}] * chunks + [{"type": "http.request"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/v1/providers/stripe/{REC.key_id}",
        "raw_path": b"",
        "query_string": b"",
        "headers": [(b"stripe-signature", b"t=1,v1=00")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("gw", 80),
        "client": ("203.0.113.9", 5000),
        "root_path": "",
    }
    # This thread's CPU only: the route runs on it (asyncio.run, no executor), while other threads left in this
    # pytest process by earlier tests (clients, watches) would count in its process time (CI: 7.1 x, not ~2.5).
    start = time.thread_time()
    asyncio.run(app(scope, receive, send))
    return time.thread_time() - start, sent[0]["status"]


def test_a_body_sent_a_byte_at_a_time_costs_time_linear_in_its_size():
    app = create_gateway(Settings(topic_prefix="chunks.", key_encryption_key=KEK, dev_mode=True))
    app.state.registry = Registry()
    cpu_to_answer(app, 1000)  # warm-up
    # the least of three runs each: a collection or a page fault in one run is no part of the route's cost
    small, status = min(cpu_to_answer(app, 65_536) for _ in range(3))
    large, status_large = min(cpu_to_answer(app, 262_000) for _ in range(3))  # the route's limit is 262,144 bytes
    assert status == status_large == 400  # read whole, then the signature refused (as before)
    # 4 times the chunks: ~2.5 times the CPU now, ~9 times with the quadratic gathering
    assert large < 6 * small, (small, large)
