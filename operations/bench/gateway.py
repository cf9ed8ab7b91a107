"""``livemetrics bench gateway``: events/s accepted end to end (HTTP, validated, enriched, delivery
confirmed by Kafka before the 202) with batches of 100 from concurrent keep-alive clients, and, in the
same run, the raw confluent-kafka produce rate of the very same records (the ceiling).

Starts its own broker on free ports unless ``--kafka`` names one; the gateway runs as ``livemetrics
gateway`` with ``gateway_workers`` of 1 and 2. The load generator is ``wrk`` (C, one thread) with
a Lua script rotating pre-generated bodies when it is installed (``apt-get install wrk``), else a lean
asyncio HTTP/1.1 client in this process. The bodies are sent again and again, so event ids repeat across
requests: the gateway does not de-duplicate (downstream does), so this costs it nothing it would not pay
for fresh ids. Every figure carries the cores each part used during its measurement (gateway processes,
broker, load generator), so that a figure taken on a loaded machine can be read for what it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from queue import SimpleQueue

import psutil
from confluent_kafka import Producer

from livemetrics import keys
from livemetrics.kafka_config import gateway_producer_config
from livemetrics.settings import Settings
from livemetrics.topics import create_topics
from operations.bench import emit
from operations.bench.http_load import asyncio_rate, wrk_run
from operations.command import livemetrics_argv
from operations.ports import free_port

BATCH = 100
WORKERS = (1, 2)
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def _events(n: int, seed: int) -> list[dict]:
    """A storefront's mix: mostly page views and heartbeats, some checkouts and payments."""
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        sid = f"bench-{seed}-{i % 37:04d}-session"
        base = {"event_id": str(uuid.uuid4()), "session_id": sid, "ts": now}
        k = i % 20
        if k < 10:
            page = [
                {"type": "home", "path": "/"},
                {"type": "category", "category": "lamps", "path": "/c/lamps"},
                {"type": "offer", "offer_id": "summer-sale", "path": "/o/summer-sale"},
            ][i % 3]
            out.append({**base, "type": "page_view", "page": page})
        elif k < 17:
            out.append({**base, "type": "heartbeat", "page": {"type": "product", "path": "/p/SKU-1"}})
        elif k == 17:
            out.append(
                {
                    **base,
                    "type": "checkout_started",
                    "customer": {"email": "ada@example.com"},
                    "checkout": {
                        "items": [{"sku": "SKU-1", "name": "Lamp", "qty": 1, "unit_price": 39.0}],
                        "total": 39.0,
                        "currency": "EUR",
                    },
                }
            )
        else:
            t = "payment_failed" if k == 19 else "payment_started"
            pay = {"method": "card", "amount": 39.0, "currency": "EUR", "order_id": f"o-{i}"}
            if t == "payment_failed":
                pay.update(error_code="card_declined", error_message="declined", details={"psp": "x"})
            out.append(
                {**base, "type": t, "payment": pay, "customer": {"email": "ada@example.com", "phone": "+4420794600"}}
            )
    return out


def _bodies(count: int) -> list[bytes]:
    return [json.dumps({"events": _events(BATCH, s)}).encode() for s in range(count)]


def _raw_records(s: Settings, bodies: list[bytes]) -> list[tuple[str, bytes, bytes]]:
    """The exact records the gateway would produce for these bodies."""
    from producers.gateway.ingest import ClientInfo, ingest

    client = ClientInfo(seller_id="bench", ip="127.0.0.1", user_agent=CHROME)
    return [r for b in bodies for r in ingest(b, client, s).records]


def raw_produce_rate(s: Settings, records: list[tuple[str, bytes, bytes]], duration: float) -> float:
    """Delivered (acks=all, idempotent) messages per second, producing as fast as the client can, with
    the gateway's producer config, produce call and per-message delivery report (``SimpleQueue.put``,
    as producers/gateway/delivery.py), the reports read back as the gateway reads them."""
    p = Producer(gateway_producer_config(s))
    reports: SimpleQueue = SimpleQueue()
    report = reports.put
    produce = p.produce
    started = time.monotonic()
    end = started + duration
    i, n = 0, len(records)
    while time.monotonic() < end:
        for _ in range(1000):
            topic, key, value = records[i % n]
            i += 1
            try:
                produce(topic, value, key, -1, report)
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(30)
    delivered = 0
    while not reports.empty():
        if reports.get_nowait() is None:
            delivered += 1
    return delivered / (time.monotonic() - started)


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and all their children, so far."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def measure_gateway(
    tmp: Path,
    port: int,
    key: str,
    bodies: list[bytes],
    duration: float,
    gateway_pid: int,
    broker_pid: int | None,
    connections: int,
) -> tuple[float, dict]:
    """Accepted events/s through the gateway and the cores each part used meanwhile."""
    use_wrk = shutil.which("wrk") is not None
    if use_wrk:
        wrk_run(tmp, port, key, CHROME, bodies, 2, connections)  # warm-up: connections, caches, producer batches
    watched = [gateway_pid] + ([broker_pid] if broker_pid else [])
    before = [_cpu_seconds([p]) for p in watched]
    self_before = psutil.Process().cpu_times()
    started = time.monotonic()
    if use_wrk:
        summary, loadgen_cpu = wrk_run(tmp, port, key, CHROME, bodies, duration, connections)
        rate = summary["accepted"] / summary["seconds"]
        errors = {"non_202": summary["bad"]} if summary["bad"] else {}
        extra = {"load_generator": "wrk", "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"]}
    else:
        rate, errors = asyncio_rate(port, key, CHROME, bodies, duration, connections, warmup=0)
        now = psutil.Process().cpu_times()
        loadgen_cpu = (now.user - self_before.user) + (now.system - self_before.system)
        extra = {"load_generator": "asyncio (in process)"}
    wall = time.monotonic() - started
    after = [_cpu_seconds([p]) for p in watched]
    cores = {
        "cores_gateway": round((after[0] - before[0]) / wall, 2),
        "cores_load_generator": round(loadgen_cpu / wall, 2),
    }
    if broker_pid:
        cores["cores_broker"] = round((after[1] - before[1]) / wall, 2)
    return rate, {**cores, **extra, **({"errors": errors} if errors else {})}


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


def _raw_ceiling(s: Settings, records: list, duration: float, broker_pid: int | None, when: str) -> float:
    """One raw produce measurement, emitted with the cores it used."""
    before = _cpu_seconds([broker_pid]) if broker_pid else 0.0
    me = psutil.Process().cpu_times()
    started = time.monotonic()
    raw = raw_produce_rate(s, records, duration)
    wall = time.monotonic() - started
    now = psutil.Process().cpu_times()
    cores = {"cores_producer": round((now.user - me.user + now.system - me.system) / wall, 2)}
    if broker_pid:
        cores["cores_broker"] = round((_cpu_seconds([broker_pid]) - before) / wall, 2)
    emit(
        "gateway",
        "raw_produce_events_per_s",
        raw,
        "events/s",
        batch=BATCH,
        measured=when,
        **cores,
        load_avg_1m=round(os.getloadavg()[0], 2),
    )
    return raw


def run(args) -> int:
    from livemetrics import lifeline
    from operations.kafka_throwaway import throwaway_kafka

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lm-bench-gw-")))
        bootstrap = args.kafka
        broker_pid = None
        if not bootstrap:
            lk = stack.enter_context(throwaway_kafka(tmp))
            bootstrap, broker_pid = lk.settings.kafka_bootstrap, lk.pid()
        s = Settings(
            dev_mode=True,
            data_dir=tmp,
            kafka_bootstrap=bootstrap,
            topic_prefix=f"bench-{uuid.uuid4().hex[:6]}.",
            gateway_rate_per_s=10_000_000,
            store="memory://",
            browser_rate_per_s=10_000_000,
            client_ip_rate_per_s=0,
        )  # one load client: no browser limits
        create_topics(s)
        key, rec = keys.new_key("pk", "bench", label="bench")
        keys.publish(s, rec)
        bodies = _bodies(40)

        records = _raw_records(s, bodies)
        raws = [_raw_ceiling(s, records, args.duration, broker_pid, "before")]
        results = []
        for workers in WORKERS:
            port = free_port()
            log = open(tmp / f"gateway-{workers}.log", "ab")
            gs = s.model_copy(update={"host": "127.0.0.1", "gateway_port": port, "gateway_workers": workers})
            proc = subprocess.Popen(  # the real command, as operators run it
                livemetrics_argv("gateway"),
                env=gs.child_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lifeline.preexec(),
            )  # ends with this process, however it ends
            try:
                _wait_ready(port, proc)
                rate, labels = measure_gateway(
                    tmp, port, key, bodies, args.duration, proc.pid, broker_pid, args.connections
                )
            finally:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            results.append((workers, rate, {**labels, "load_avg_1m": round(os.getloadavg()[0], 2)}))
        # The raw rate swings by +-15% between runs on this machine: it is measured again after the
        # gateways and each ratio is taken against the higher of the two, the conservative ceiling.
        raws.append(_raw_ceiling(s, records, args.duration, broker_pid, "after"))
        raw = max(raws)
        for workers, rate, labels in results:
            emit(
                "gateway",
                "gateway_events_per_s",
                rate,
                "events/s",
                workers=workers,
                batch=BATCH,
                clients=args.connections,
                ratio_to_raw=round(rate / raw, 3) if raw else None,
                raw_ceiling=round(raw),
                duplicate_event_ids=True,
                **labels,
            )
    return 0
