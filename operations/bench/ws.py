"""``livemetrics bench ws``: 1,000 concurrent dashboard WebSockets on one API process while events flow;
the time from the gateway's 202 to the snapshot that shows the event reaching each client (p50, p99).

Ceiling, in the same run: the same time to a plain Kafka consumer of ``live-metrics`` in this process
(what the pipeline itself takes before the API fans out). Starts its own broker on free ports unless
``--kafka`` names one; the worker, gateway and API are separate processes; the clients are asyncio
WebSockets in this process.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import websockets
from confluent_kafka import Consumer, TopicPartition

from livemetrics import keys
from livemetrics.kafka_config import base_config
from livemetrics.settings import Settings
from livemetrics.topics import create_topics
from operations.bench import emit
from operations.bench.gateway import CHROME
from operations.bench.procs import own_broker, start_processes
from operations.ports import free_port

CLIENTS = 1000
SELLER = "bench-ws"


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


class Marks:
    """When each round's event got its 202, and when each observer first saw it in a snapshot."""

    def __init__(self):
        self.sent: dict[int, float] = {}
        self.seen: list[tuple[int, float]] = []  # (round, seen at) per client
        self.raw: list[tuple[int, float]] = []

    def latencies(self, seen) -> list[float]:
        return [(t - self.sent[k]) * 1000 for k, t in seen if k in self.sent]


def _raw_follower(s: Settings, marks: Marks, stop: threading.Event) -> None:
    c = Consumer({**base_config(s), "group.id": "unused", "enable.auto.commit": False})
    topic = s.topic("live-metrics")
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, -1) for p in md.topics[topic].partitions])  # -1: the end
    best = 0
    try:
        while not stop.is_set():
            m = c.poll(0.05)
            if m is None or m.error() or (m.key() or b"").decode() != SELLER:
                continue
            home = json.loads(m.value())["live"]["home"]
            now = time.time()
            for k in range(best + 1, home + 1):
                marks.raw.append((k, now))
            best = max(best, home)
    finally:
        c.close()


async def _client(url: str, token: str, marks: Marks, ready: asyncio.Event, counter: list[int]) -> None:
    # The header, not `?token=` (refused: URLs get logged); a browser would use a ticket instead.
    async with websockets.connect(
        url,
        open_timeout=60,
        max_queue=None,
        ping_interval=None,
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as ws:
        best = json.loads(await ws.recv())["data"]["live"]["home"]
        counter[0] += 1
        if counter[0] == CLIENTS:
            ready.set()
        async for raw in ws:
            now = time.time()
            msg = json.loads(raw)
            if msg["type"] != "snapshot":
                continue
            home = msg["data"]["live"]["home"]
            for k in range(best + 1, home + 1):
                marks.seen.append((k, now))
            best = max(best, home)


async def _drive(s: Settings, gw: str, api: str, browser: str, token: str, load_key: str, duration: float) -> Marks:
    marks = Marks()
    url = api.replace("http", "ws") + f"/v1/sellers/{SELLER}/live/ws"
    ready, counter = asyncio.Event(), [0]
    clients = []
    for i in range(CLIENTS):  # connect in waves so that the handshakes do not time out on 2 cores
        clients.append(asyncio.create_task(_client(url, token, marks, ready, counter)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(ready.wait(), 120)
    stop = threading.Event()
    raw = threading.Thread(target=_raw_follower, args=(s, marks, stop), daemon=True)
    raw.start()
    async with httpx.AsyncClient(timeout=15, headers={"User-Agent": CHROME}) as http:

        async def background() -> None:  # other shops' traffic keeps the worker busy meanwhile
            while True:
                evs = [
                    {
                        "event_id": str(uuid.uuid4()),
                        "type": "page_view",
                        "session_id": f"load-{uuid.uuid4().hex[:12]}",
                        "ts": int(time.time() * 1000),
                        "page": {"type": "category", "category": "lamps"},
                    }
                    for _ in range(50)
                ]
                await http.post(
                    f"{gw}/v1/events", json={"events": evs}, headers={"Authorization": f"Bearer {load_key}"}
                )
                await asyncio.sleep(0.1)

        load = asyncio.create_task(background())
        await asyncio.sleep(1.0)
        rounds, end = 0, time.monotonic() + duration
        while time.monotonic() < end:
            ev = {
                "event_id": str(uuid.uuid4()),
                "type": "page_view",
                "session_id": f"ws-bench-{rounds:06d}-x",
                "ts": int(time.time() * 1000),
                "page": {"type": "home", "path": "/"},
            }
            r = await http.post(f"{gw}/v1/events", json=ev, headers={"Authorization": f"Bearer {browser}"})
            if r.status_code == 202:
                rounds += 1
                marks.sent[rounds] = time.time()
            await asyncio.sleep(0.7)
        await asyncio.sleep(3.0)  # the last round's snapshot reaches everyone
        load.cancel()
    stop.set()
    for c in clients:
        c.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    raw.join(5)
    return marks


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def run(args) -> int:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lm-bench-ws-")))
        bootstrap = own_broker(stack, tmp, args.kafka)
        tag = uuid.uuid4().hex[:8]
        s = Settings(
            dev_mode=True,
            data_dir=tmp / "data",
            kafka_bootstrap=bootstrap,
            topic_prefix=f"bws{tag}.",
            app_id=f"bws-{tag}",
            clickhouse_dsn=args.clickhouse or f"chdb://{tmp / 'chdb'}",
            store="memory://",
            gateway_port=free_port(),
            api_port=free_port(),
            ws_max_per_seller=CLIENTS + 10,
            ws_max_per_ip=CLIENTS + 10,
            ws_max_total=CLIENTS + 10,  # every client is 127.0.0.1
            admin_token=f"bench-admin-{uuid.uuid4().hex}",
            browser_rate_per_s=1_000_000,
            client_ip_rate_per_s=0,
        )  # one load client: no browser limits
        create_topics(s)
        browser, brec = keys.new_key("pk", SELLER)
        token, trec = keys.new_key("st", SELLER)
        load_key, lrec = keys.new_key("pk", "bench-load")
        for rec in (brec, trec, lrec):
            keys.publish(s, rec)
        logs = stack.enter_context(open(tmp / "procs.log", "ab"))
        procs = start_processes(stack, s, [["worker"], ["gateway"], ["api", "--no-sink"]], logs, stop_s=20)
        gw, api = f"http://127.0.0.1:{s.gateway_port}", f"http://127.0.0.1:{s.api_port}"
        _wait_http(gw + "/healthz", 60)
        _wait_http(api + "/healthz", 60)
        # Warm-up: the worker has joined once the seller's snapshot shows a page view.
        with httpx.Client(timeout=15, headers={"User-Agent": CHROME}) as http:
            deadline = time.monotonic() + 120
            http.post(
                f"{gw}/v1/events",
                headers={"Authorization": f"Bearer {load_key}"},
                json={
                    "event_id": str(uuid.uuid4()),
                    "type": "page_view",
                    "session_id": "warm-up-session",
                    "ts": int(time.time() * 1000),
                    "page": {"type": "home"},
                },
            )
            while time.monotonic() < deadline:
                snap = http.get(
                    f"{api}/v1/sellers/bench-load/live",
                    headers={"Authorization": f"Bearer {s.admin_token.get_secret_value()}"},
                )
                if snap.status_code == 200 and snap.json()["live"]["home"] >= 1:
                    break
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"a process died; see {tmp / 'procs.log'}")
                time.sleep(0.3)
        marks = asyncio.run(_drive(s, gw, api, browser, token, load_key, args.duration))
        push, raw = marks.latencies(marks.seen), marks.latencies(marks.raw)
        expected = len(marks.sent) * CLIENTS
        emit("ws", "push_latency_p50_ms", _pct(push, 50), "ms", clients=CLIENTS, samples=len(push), expected=expected)
        emit("ws", "push_latency_p99_ms", _pct(push, 99), "ms", clients=CLIENTS, samples=len(push), expected=expected)
        emit("ws", "raw_snapshot_latency_p50_ms", _pct(raw, 50), "ms", consumer="kafka live-metrics (ceiling)")
        emit("ws", "raw_snapshot_latency_p99_ms", _pct(raw, 99), "ms", consumer="kafka live-metrics (ceiling)")
        return 0 if len(push) >= expected * 0.99 else 1
