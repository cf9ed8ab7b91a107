"""``livemetrics bench e2e``: sustained load through the gateway with the whole stack of ``livemetrics up``
running (own broker and chdb unless ``--kafka``/``--clickhouse``), for ``--duration`` seconds.

Figures: ``e2e_events_per_s`` (events the gateway confirmed with 202); ``e2e_latency_p50_ms`` /
``_p99_ms`` (a probe page view's 202 -> the snapshot counting it seen on a dashboard WebSocket);
``consumer_lag_events`` at the end (label ``group``); ``cpu_s_per_1k_events`` per process; and the
baseline ``baseline_refresh_ms``: the same live question (sessions per location, last 5 minutes)
answered by querying ClickHouse over the raw events on every refresh, as Plausible and Umami do.
With embedded chdb the API process owns the data directory, so the baseline runs right after the load
on the same data, with the stack stopped (which flatters the baseline: it has both cores to itself).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
import websockets

from livemetrics.settings import Settings
from operations.bench import emit

BATCH = 100
CONCURRENCY = 4
# Open-loop offered load: what a storefront fleet sends, held whether or not the pipeline keeps up
# (a closed loop would measure only the gateway). Lag at the end says whether it was held.
DEFAULT_RATE = 2000  # events/s; `--rate` overrides
PROBE_EVERY_S = 0.5
BASELINE_SQL = """
SELECT loc, count() AS sessions FROM (
  SELECT session_id,
         argMaxIf(multiIf(type = 'checkout_started', 'checkout',
                          type IN ('payment_started', 'payment_failed'), 'payment',
                          type = 'payment_succeeded', 'purchased',
                          page_type = 'category', concat('category:', category),
                          page_type = 'offer', concat('offer:', offer_id), page_type),
                  received_at, type != 'heartbeat') AS loc
  FROM {db}.events
  WHERE seller_id = {seller:String} AND NOT is_bot AND NOT backfill
    AND received_at >= {now:DateTime64(3)} - INTERVAL 5 MINUTE
  GROUP BY session_id)
WHERE loc != 'purchased'
GROUP BY loc
"""


def _page_views(n: int, rng: random.Random) -> list[dict]:
    now = int(time.time() * 1000)
    cats = ("lamps", "rugs", "sofas", "kitchen", "garden")
    out = []
    for _ in range(n):
        kind = rng.random()
        page = (
            {"type": "home", "path": "/"}
            if kind < 0.4
            else {"type": "category", "category": rng.choice(cats), "path": "/c"}
            if kind < 0.8
            else {"type": "offer", "offer_id": f"o-{rng.randrange(50)}", "path": "/o"}
        )
        out.append(
            {
                "event_id": str(uuid.uuid4()),
                "type": "page_view",
                "ts": now,
                "session_id": f"bench-{rng.randrange(200_000):06d}-x",
                "page": page,
            }
        )
    return out


UA = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
}


async def _load(gateway: str, key: str, stop_at: float, counter: list[int], rate: float) -> None:
    rng = random.Random()
    async with httpx.AsyncClient(
        base_url=gateway, timeout=30, headers={**UA, "Origin": gateway, "Authorization": f"Bearer {key}"}
    ) as http:
        interval = BATCH * CONCURRENCY / rate
        next_at = time.monotonic() + rng.random() * interval
        while time.monotonic() < stop_at:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            r = await http.post("/v1/events", json={"events": _page_views(BATCH, rng)})
            if r.status_code == 202:
                counter[0] += r.json()["accepted"]


async def _probe(gateway: str, api: str, key: str, token: str, seller: str, stop_at: float) -> list[float]:
    """One new session's page view every PROBE_EVERY_S; latency until the WebSocket shows it counted."""
    ws_url = api.replace("http", "ws", 1) + f"/v1/sellers/{seller}/live/ws"  # token in the header, never the URL
    acked: dict[int, float] = {}
    latencies: list[float] = []
    async with (
        websockets.connect(ws_url, max_size=None, additional_headers={"Authorization": f"Bearer {token}"}) as ws,
        httpx.AsyncClient(
            base_url=gateway, timeout=30, headers={**UA, "Origin": gateway, "Authorization": f"Bearer {key}"}
        ) as http,
    ):
        first = json.loads(await ws.recv())
        base = first["data"]["live"].get("home", 0)

        async def reader():
            seen = 0
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") != "snapshot":
                    continue
                count = msg["data"]["live"].get("home", 0) - base
                now = time.monotonic()
                for k in range(seen + 1, count + 1):
                    if k in acked:
                        latencies.append((now - acked[k]) * 1000)
                seen = max(seen, count)

        task = asyncio.create_task(reader())
        k = 0
        while time.monotonic() < stop_at:
            ev = {
                "event_id": str(uuid.uuid4()),
                "type": "page_view",
                "ts": int(time.time() * 1000),
                "session_id": f"probe-{uuid.uuid4().hex[:16]}",
                "page": {"type": "home", "path": "/"},
            }
            r = await http.post("/v1/events", json=ev)
            if r.status_code == 202:
                k += 1
                acked[k] = time.monotonic()
            await asyncio.sleep(PROBE_EVERY_S)
        await asyncio.sleep(3)  # let the last probes arrive
        task.cancel()
    return latencies


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            p = psutil.Process(pid)
            procs = [p] + p.children(recursive=True)
            out[name] = sum(sum(q.cpu_times()[:2]) for q in procs)
        except psutil.NoSuchProcess:
            out[name] = 0.0
    return out


def _lag(settings: Settings, group: str) -> int:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    from livemetrics.kafka_config import admin_config, consumer_config

    admin = AdminClient(admin_config(settings))
    from confluent_kafka import ConsumerGroupTopicPartitions

    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=10)
    c = Consumer(consumer_config(settings, f"bench-lag-{uuid.uuid4().hex[:6]}"))
    try:
        lag = 0
        for tp in res.topic_partitions:
            if tp.offset < 0:
                continue
            _, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            lag += max(0, high - tp.offset)
        return lag
    finally:
        c.close()


def _warm_up(gateway: str, api: str, keys: dict, seller: str, timeout: float = 120.0) -> None:
    """Measure a running pipeline, not the worker's first partition assignment: one page view must be
    counted live before the clock starts."""
    ev = {
        "event_id": str(uuid.uuid4()),
        "type": "page_view",
        "ts": int(time.time() * 1000),
        "session_id": f"warmup-{uuid.uuid4().hex[:12]}",
        "page": {"type": "home", "path": "/"},
    }
    httpx.post(
        f"{gateway}/v1/events",
        json=ev,
        headers={**UA, "Origin": gateway, "Authorization": f"Bearer {keys['browser_key']}"},
        timeout=30,
    ).raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = httpx.get(
            f"{api}/v1/sellers/{seller}/live", headers={"Authorization": f"Bearer {keys['token']}"}, timeout=10
        ).json()
        if snap["live"].get("home", 0) >= 1:
            return
        time.sleep(0.2)
    raise RuntimeError("the pipeline did not count a warm-up event within 120 s")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args) -> int:
    from operations.up import Stack

    duration = float(args.duration)
    rate = float(getattr(args, "rate", None) or DEFAULT_RATE)
    tmp = Path(tempfile.mkdtemp(prefix="lm-bench-e2e-"))
    settings = Settings(
        dev_mode=True,  # a throw-away development stack (livemetrics/secrets_check.py)
        data_dir=tmp,
        kafka_bootstrap=args.kafka or f"127.0.0.1:{_free_port()}",
        kafka_controller_port=_free_port(),
        gateway_port=_free_port(),
        api_port=_free_port(),
        clickhouse_dsn=args.clickhouse or "",
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}." if args.kafka else "",
        app_id=f"lm-bench-{uuid.uuid4().hex[:6]}",
        sink_group=f"sink-bench-{uuid.uuid4().hex[:6]}",
        clickhouse_database=f"lm_bench_{uuid.uuid4().hex[:6]}",
        browser_rate_per_s=1_000_000,
        client_ip_rate_per_s=0,  # one load client: no browser limits
    )
    stack = Stack(settings, simulate=False)
    try:
        stack.start(external_kafka=bool(args.kafka))
        gateway, api = stack.url(settings.gateway_port), stack.url(settings.api_port)
        load_keys = [stack.sellers[s]["browser_key"] for s in ("nordic-outdoor", "tiny-books")]
        probe = stack.sellers["acme-home"]
        pids = {c.name: c.pid for c in stack.children}
        if stack.broker is not None:
            pids["kafka"] = stack.broker.pid
        _warm_up(gateway, api, probe, "acme-home")
        counter = [0]
        cpu0 = _cpu(pids)
        t0 = time.monotonic()
        stop_at = t0 + duration

        async def drive():
            loads = [_load(gateway, load_keys[i % 2], stop_at, counter, rate) for i in range(CONCURRENCY)]
            res = await asyncio.gather(
                _probe(gateway, api, probe["browser_key"], probe["token"], "acme-home", stop_at), *loads
            )
            return res[0]

        latencies = asyncio.run(drive())
        elapsed = time.monotonic() - t0
        cpu1 = _cpu(pids)
        events = counter[0] + len(latencies)
        emit("e2e", "e2e_events_per_s", events / elapsed, "events/s", offered=rate, batch=BATCH)
        if latencies:
            q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
            emit("e2e", "e2e_latency_p50_ms", statistics.median(latencies), "ms", probes=len(latencies))
            emit("e2e", "e2e_latency_p99_ms", q[98], "ms", probes=len(latencies))
        for group in (settings.app_id, settings.sink_group):
            emit("e2e", "consumer_lag_events", _lag(settings, group), "events", group=group)
        for name in pids:
            emit("e2e", "cpu_s_per_1k_events", (cpu1[name] - cpu0[name]) / max(events, 1) * 1000, "cpu s", process=name)
    finally:
        stack.stop()
    _baseline(settings)
    return 0


def _baseline(settings: Settings, refreshes: int = 20) -> None:
    """The same live question over raw events, once per dashboard refresh."""
    from clickhouse.client import get_client

    client = get_client(settings)
    db = settings.clickhouse_database
    now = client.query(f"SELECT max(received_at) FROM {db}.events").result_rows[0][0]
    rows = client.query(f"SELECT count() FROM {db}.events WHERE seller_id = 'nordic-outdoor'").result_rows[0][0]
    sql = BASELINE_SQL.replace("{db}", db)
    times = []
    for _ in range(refreshes):
        t = time.perf_counter()
        client.query(sql, parameters={"seller": "nordic-outdoor", "now": now})
        times.append((time.perf_counter() - t) * 1000)
    emit(
        "e2e",
        "baseline_refresh_ms",
        statistics.median(times),
        "ms",
        seller_rows=rows,
        refreshes=refreshes,
        note="same data, stack stopped" if settings.clickhouse_embedded else "server",
    )
