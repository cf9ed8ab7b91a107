"""``livemetrics bench alerts``: from a failed payment's 202 at the gateway to the seller's webhook
receiving the alert, with ``--sellers`` sellers (1,000 by default) each with a webhook on a local HTTP
server, one of which never answers (its deliveries time out and are retried; the others must not wait).

Figures: ``alert_delivery_p50_ms`` / ``_p99_ms`` over the healthy endpoints (label ``delivered`` /
``expected``), and the ceiling in the same run: ``bare_post_p50_ms`` / ``_p99_ms``, this process POSTing the
same kind of body straight to the same endpoints (what delivery costs without the pipeline). The whole
stack runs as separate processes (worker, gateway, API with its notifier and embedded sink), dev mode
(webhooks on http://127.0.0.1 are refused otherwise); its own broker unless ``--kafka``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import httpx
import msgspec
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from livemetrics import keys
from livemetrics.kafka_config import producer_config
from livemetrics.settings import Settings
from livemetrics.topics import create_topics
from operations.bench import emit
from operations.bench.gateway import CHROME
from operations.bench.procs import own_broker, start_processes
from operations.command import livemetrics_argv
from operations.ports import free_port

HANGING = "bench-alerts-0000"  # its endpoint reads the request and never answers
SEND_CONCURRENCY = 64


class Receiver:
    """A small HTTP/1.1 server on its own thread and event loop: ``POST /hook/<seller>`` answers 204 and
    notes when each alert arrived (by ``order.order_id``, which the bench makes unique per event)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-receiver", daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=2048))
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                at = time.monotonic()
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = next(
                    (int(v) for k, _, v in (ln.partition(": ") for ln in lines[1:]) if k.lower() == "content-length"), 0
                )
                body = await reader.readexactly(length)
                try:
                    order = json.loads(body).get("order", {}).get("order_id")
                except ValueError:
                    order = None
                if order:
                    self.arrived.setdefault(order, at)
                if path.endswith("/" + HANGING):
                    await asyncio.sleep(3600)  # never answers: the notifier's timeout ends it
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError, asyncio.CancelledError):
            pass  # the client went away, a malformed request, or the bench is over
        finally:
            writer.close()


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else float("nan")


def _failed_payment(order: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "payment_failed",
        "session_id": f"sess-{order}",
        "ts": int(time.time() * 1000),
        "payment": {
            "method": "card",
            "amount": "19.90",
            "currency": "EUR",
            "order_id": order,
            "error_code": "card_declined",
        },
    }


def _session() -> aiohttp.ClientSession:
    """This process's HTTP client for the events it sends and the ceiling's POSTs: aiohttp, as the notifier
    (httpx spent ~25x its CPU per request here, which slowed this process's receiver thread too)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SEND_CONCURRENCY), timeout=aiohttp.ClientTimeout(total=30)
    )


async def _send_round(gw: str, browser_keys: dict[str, str], tag: str, sent: dict[str, float]) -> None:
    async with _session() as http:

        async def one(seller: str, key: str) -> None:
            order = f"{tag}:{seller}"
            async with http.post(
                f"{gw}/v1/events",
                json=_failed_payment(order),
                headers={"Authorization": f"Bearer {key}", "User-Agent": CHROME},
            ) as r:
                await r.read()
                if r.status == 202:
                    sent[order] = time.monotonic()

        await asyncio.gather(*(one(s, k) for s, k in browser_keys.items()))


async def _bare_posts(receiver: Receiver, sellers: list[str]) -> list[float]:
    """The ceiling: POST an alert-sized body straight to each healthy endpoint; start -> arrival."""
    started: dict[str, float] = {}
    body = {
        "kind": "payment_failed",
        "alert_id": "",
        "customer": {"email": "a@example.com"},
        "payment": {"method": "card", "error_code": "card_declined"},
        "context": {},
    }
    sem = asyncio.Semaphore(SEND_CONCURRENCY)
    async with _session() as http:

        async def one(seller: str) -> None:
            order = f"bare:{seller}"
            async with sem:
                started[order] = time.monotonic()
                async with http.post(
                    f"http://127.0.0.1:{receiver.port}/hook/{seller}", json={**body, "order": {"order_id": order}}
                ) as r:
                    await r.read()

        await asyncio.gather(*(one(s) for s in sellers))
    return [(receiver.arrived[o] - t) * 1000 for o, t in started.items() if o in receiver.arrived]


def _publish_keys(s: Settings, sellers: list[str]) -> dict[str, str]:
    """A browser key per seller, through one producer (``keys.publish`` makes one per key)."""
    out: dict[str, str] = {}
    producer = Producer(producer_config(s))
    for seller in sellers:
        key, rec = keys.new_key("pk", seller, label="bench")
        out[seller] = key
        producer.produce(s.topic("seller-keys"), key=rec.key_id.encode(), value=msgspec.json.encode(rec))
    if producer.flush(60):
        raise RuntimeError("could not store the sellers' keys in Kafka")
    return out


def _wait(pred, timeout: float, procs: list, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a process died while waiting for {what}; see {log}")
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}; see {log}")


def run(args) -> int:
    n = args.sellers or 1000
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lm-bench-alerts-")))
        bootstrap = own_broker(stack, tmp, args.kafka)
        tag = uuid.uuid4().hex[:8]
        admin = f"bench-admin-{uuid.uuid4().hex}"
        s = Settings(
            dev_mode=True,
            data_dir=tmp / "data",
            kafka_bootstrap=bootstrap,
            topic_prefix=f"bal{tag}.",
            app_id=f"bal-{tag}",
            clickhouse_dsn=args.clickhouse or f"chdb://{tmp / 'chdb'}",
            store="memory://",
            gateway_port=free_port(),
            api_port=free_port(),
            admin_token=admin,
            notify_group=f"bal-notify-{tag}",
            notify_timeout_s=5.0,
            notify_max_channels=2,
            client_ip_rate_per_s=0,
            api_rate_per_s=1_000_000,
            api_rate_burst=1_000_000,
        )
        create_topics(s)
        sellers = [f"bench-alerts-{i:04d}" for i in range(n)]
        browser_keys = _publish_keys(s, sellers)
        receiver = Receiver().start()
        stack.callback(receiver.stop)
        log = tmp / "procs.log"
        logs = stack.enter_context(open(log, "ab"))
        subprocess.run(
            livemetrics_argv("migrate"),
            env=s.child_env(),
            stdout=logs,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )
        procs = start_processes(stack, s, [["worker"], ["gateway"], ["api"]], logs)
        gw, api = f"http://127.0.0.1:{s.gateway_port}", f"http://127.0.0.1:{s.api_port}"
        with httpx.Client(timeout=30) as http:
            _wait(lambda: _up(http, api), 120, procs, "the API", log)
            for seller in sellers:  # every seller's webhook, added as the seller would (the admin token here)
                r = http.post(
                    f"{api}/v1/sellers/{seller}/notifications/webhooks",
                    json={"url": f"http://127.0.0.1:{receiver.port}/hook/{seller}"},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                if r.status_code != 201:
                    raise RuntimeError(f"adding {seller}'s webhook: {r.status_code} {r.text}")
        # Warm-up: the notifier starts at the end of payment-alerts, so only an alert it delivered says
        # the worker, the gateway and the notifier are all in place.
        warm: dict[str, float] = {}
        deadline = time.monotonic() + 180
        while not any(o in receiver.arrived for o in warm):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"no alert reached its webhook during the warm-up; see {log}")
            asyncio.run(_send_round(gw, {sellers[-1]: browser_keys[sellers[-1]]}, f"warm{len(warm)}", warm))
            _wait_quietly(lambda: any(o in receiver.arrived for o in warm), 3)
        sent: dict[str, float] = {}
        rounds = max(1, int(args.duration // 10))
        healthy = [x for x in sellers if x != HANGING]
        for r in range(rounds):
            asyncio.run(_send_round(gw, browser_keys, f"r{r}", sent))
            expect = [o for o in sent if not o.endswith(HANGING)]
            try:
                _wait(
                    lambda expect=expect: all(o in receiver.arrived for o in expect),
                    60,
                    procs,
                    "the round's alerts",
                    log,
                )
            except RuntimeError:
                break  # reported below as delivered < expected
        lat = [
            (receiver.arrived[o] - t) * 1000
            for o, t in sent.items()
            if not o.endswith(HANGING) and o in receiver.arrived
        ]
        expected = sum(1 for o in sent if not o.endswith(HANGING))
        stages: dict[str, tuple[int, float, float]] = {}
        deadline = time.monotonic() + 15  # the last pending insert may end after the last arrival
        while "record" not in stages and time.monotonic() < deadline:
            stages = _stage_figures(api)
            time.sleep(0.2)
        bare = asyncio.run(_bare_posts(receiver, healthy))
        labels = {"sellers": n, "hanging": 1, "delivered": len(lat), "expected": expected}
        emit("alerts", "alert_delivery_p50_ms", _pct(lat, 50), "ms", **labels)
        emit("alerts", "alert_delivery_p99_ms", _pct(lat, 99), "ms", **labels)
        emit(
            "alerts", "bare_post_p50_ms", _pct(bare, 50), "ms", ceiling="a POST from this process to the same endpoints"
        )
        emit(
            "alerts", "bare_post_p99_ms", _pct(bare, 99), "ms", ceiling="a POST from this process to the same endpoints"
        )
        for stage, (count, p50, p99) in stages.items():
            for name, value in (("p50", p50), ("p99", p99)):
                emit(
                    "alerts",
                    f"alert_stage_{stage}_{name}_ms",
                    value,
                    "ms",
                    count=count,
                    bound="the upper bound of the notifier's histogram bucket (api/notify/timing.py)",
                )
        return 0 if expected and len(lat) == expected else 1


def _stage_figures(api: str) -> dict[str, tuple[int, float, float]]:
    """Per stage of the notifier (api/notify/timing.py): observations, p50 and p99 as the upper bound of
    the histogram bucket they fall in (ms), from the API's /metrics (warm-up alerts included)."""
    text = httpx.get(api + "/metrics", timeout=30).text
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "livemetrics_notify_stage_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets.setdefault(sample.labels["stage"], []).append((float(sample.labels["le"]), sample.value))
    out = {}
    for stage, rows in buckets.items():
        rows.sort()
        count = rows[-1][1]
        if count:
            at = [next(le for le, n in rows if n >= count * q) * 1000 for q in (0.5, 0.99)]
            out[stage] = (int(count), at[0], at[1])
    return out


def _up(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url + "/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _wait_quietly(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False
