"""``livemetrics bench gateway``: events/s accepted end to end (HTTP, validated, delivery confirmed by
Kafka) with batches of 100 from concurrent keep-alive clients, and, in the same run, the raw
confluent-kafka produce rate of the very same records (the ceiling).

Starts its own broker on free ports unless ``--kafka`` names one; the gateway runs as uvicorn worker
processes (``producers.gateway.app:create_gateway``), the load generator is a lean asyncio HTTP/1.1
client in this process so that it costs the machine as little as possible.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from confluent_kafka import Producer

from livemetrics import keys
from livemetrics.bench import emit
from livemetrics.kafka_config import producer_config
from livemetrics.settings import Settings
from livemetrics.topics import create_topics

BATCH = 100
CONNECTIONS = 24
WORKERS = (1, 2)
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(n: int, seed: int) -> list[dict]:
    """A storefront's mix: mostly page views and heartbeats, some checkouts and payments."""
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        sid = f"bench-{seed}-{i % 37:04d}-session"
        base = {"event_id": str(uuid.uuid4()), "session_id": sid, "ts": now}
        k = i % 20
        if k < 10:
            page = [{"type": "home", "path": "/"}, {"type": "category", "category": "lamps", "path": "/c/lamps"},
                    {"type": "offer", "offer_id": "summer-sale", "path": "/o/summer-sale"}][i % 3]
            out.append({**base, "type": "page_view", "page": page})
        elif k < 17:
            out.append({**base, "type": "heartbeat", "page": {"type": "product", "path": "/p/SKU-1"}})
        elif k == 17:
            out.append({**base, "type": "checkout_started", "customer": {"email": "ada@example.com"},
                        "checkout": {"items": [{"sku": "SKU-1", "name": "Lamp", "qty": 1, "unit_price": 39.0}],
                                     "total": 39.0, "currency": "EUR"}})
        else:
            t = "payment_failed" if k == 19 else "payment_started"
            pay = {"method": "card", "amount": 39.0, "currency": "EUR", "order_id": f"o-{i}"}
            if t == "payment_failed":
                pay.update(error_code="card_declined", error_message="declined", details={"psp": "x"})
            out.append({**base, "type": t, "payment": pay, "customer": {"email": "ada@example.com", "phone": "+4420794600"}})
    return out


def _bodies(count: int) -> list[bytes]:
    return [json.dumps({"events": _events(BATCH, s)}).encode() for s in range(count)]


def _raw_records(s: Settings, bodies: list[bytes]) -> list[tuple[str, bytes, bytes]]:
    """The exact records the gateway would produce for these bodies."""
    from producers.gateway.ingest import ClientInfo, ingest

    client = ClientInfo(seller_id="bench", ip="127.0.0.1", user_agent=CHROME)
    return [r for b in bodies for r in ingest(b, client, s).records]


def raw_produce_rate(s: Settings, records: list[tuple[str, bytes, bytes]], duration: float) -> float:
    """Delivered (acks=all, idempotent) messages per second, producing as fast as the client can."""
    p = Producer(producer_config(s))
    done = [0]

    def on_delivery(err, msg):
        if err is None:
            done[0] += 1

    produce = p.produce
    started = time.monotonic()
    end = started + duration
    i, n = 0, len(records)
    while time.monotonic() < end:
        for _ in range(1000):
            topic, key, value = records[i % n]
            i += 1
            try:
                produce(topic, value, key, on_delivery=on_delivery)
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(30)
    return done[0] / (time.monotonic() - started)


async def _client(port: int, requests: list[bytes], stop_at: float, counts: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    length = re.compile(rb"content-length: *(\d+)", re.I)
    try:
        while time.monotonic() < stop_at:
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(int(length.search(head).group(1)))
            status = int(head[9:12])
            if status == 202 and time.monotonic() >= counts["from"]:
                counts["accepted"] += json.loads(body)["accepted"]
            elif status != 202:
                counts["errors"][status] = counts["errors"].get(status, 0) + 1
    finally:
        writer.close()


def gateway_rate(port: int, key: str, bodies: list[bytes], duration: float, warmup: float = 2.0) -> tuple[float, dict]:
    requests = [(f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                 f"User-Agent: {CHROME}\r\nContent-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
                for b in bodies]
    start = time.monotonic()
    counts = {"accepted": 0, "errors": {}, "from": start + warmup}

    async def main():
        stop_at = start + warmup + duration
        await asyncio.gather(*[_client(port, requests[c:] + requests[:c], stop_at, counts) for c in range(CONNECTIONS)])

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    return counts["accepted"] / duration, counts["errors"]


def _env(s: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in s.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"LIVEMETRICS_{name.upper()}"] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return env


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gateway exited during start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gateway not ready in time")


def run(args) -> int:
    from livemetrics.kafka_local import LocalKafka

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lm-bench-gw-")))
        bootstrap = args.kafka
        if not bootstrap:
            ks = Settings(data_dir=tmp, kafka_bootstrap=f"127.0.0.1:{_free_port()}", kafka_controller_port=_free_port())
            lk = LocalKafka(ks)
            lk.start(wait_s=90, quiet=True)
            stack.callback(lk.stop)
            bootstrap = ks.kafka_bootstrap
        s = Settings(data_dir=tmp, kafka_bootstrap=bootstrap, topic_prefix=f"bench-{uuid.uuid4().hex[:6]}.",
                     gateway_rate_per_s=10_000_000, store="memory://")
        create_topics(s)
        key, rec = keys.new_key("pk", "bench", label="bench")
        keys.publish(s, rec)
        bodies = _bodies(40)

        raw = raw_produce_rate(s, _raw_records(s, bodies), args.duration)
        emit("gateway", "raw_produce_events_per_s", raw, "events/s", batch=BATCH)

        for workers in WORKERS:
            port = _free_port()
            log = open(tmp / f"gateway-{workers}.log", "ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "producers.gateway.app:create_gateway", "--factory",
                 "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
                 "--http", "httptools", "--no-access-log", "--log-level", "warning", "--backlog", "2048"],
                env=_env(s), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                _wait_ready(port, proc)
                rate, errors = gateway_rate(port, key, bodies, args.duration)
            finally:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            emit("gateway", "gateway_events_per_s", rate, "events/s", batch=BATCH, connections=CONNECTIONS,
                 workers=workers, ratio_to_raw=round(rate / raw, 3) if raw else None,
                 **({"errors": errors} if errors else {}))
    return 0
