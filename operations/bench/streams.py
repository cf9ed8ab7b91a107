"""``livemetrics bench streams``: events/s one Faust worker folds into the live tables (production
RocksDB store), next to a plain aiokafka consume of the same topics in the same run, and the worker's
resident memory once 1 million distinct active sessions are in its sessions table. The snapshots are
checked to count every session and, in their per-minute rates (the windowed table), every event."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from livemetrics import lifeline
from livemetrics.contract import TOPIC_FOR_TYPE, Checkout, Customer, Event, Item, Page, Payment, encode
from livemetrics.settings import Settings
from operations.bench import emit
from operations.bench.procs import own_broker
from operations.command import livemetrics_argv

SESSIONS = 1_000_000
SELLERS = 20


def events(n: int, sessions: int, now: int, seed: int = 3):
    """(topic, key, value): the first ``sessions`` events each open a session, the rest revisit them with
    page views, checkouts and payments; all received now, so every session is active."""
    rnd = random.Random(seed)
    cats = [f"cat-{i}" for i in range(40)]
    for i in range(n):
        s = i % sessions
        sid, seller = f"sess-{s:010d}", f"seller-{s % SELLERS}"
        common = dict(
            event_id=str(uuid.UUID(int=rnd.getrandbits(128))),
            seller_id=seller,
            session_id=sid,
            ts=now,
            received_at=now + i // 1000,
            browser="Chrome",
            os="Linux",
            device="Other",
        )
        r = rnd.random() if i >= sessions else 0.0
        if r < 0.8:
            e = Event(type="page_view", page=Page(type="category", category=cats[s % 40], path="/c"), **common)
        elif r < 0.9:
            e = Event(
                type="checkout_started",
                checkout=Checkout(
                    items=[Item(sku="A-1", name="Lamp", qty=1, unit_price=20.0)], total=20.0, currency="EUR"
                ),
                **common,
            )
        else:
            t = rnd.choice(("payment_started", "payment_succeeded", "payment_failed"))
            e = Event(
                type=t,
                customer=Customer(email="a@example.com"),
                payment=Payment(
                    method="card",
                    amount=20.0,
                    currency="EUR",
                    order_id="o-1",
                    error_code="declined" if t == "payment_failed" else None,
                ),
                **common,
            )
        yield TOPIC_FOR_TYPE[e.type], sid.encode(), encode(e)


def produce(s: Settings, n: int, sessions: int) -> None:
    from confluent_kafka import Producer

    from livemetrics.kafka_config import producer_config

    p = Producer(producer_config(s, **{"linger.ms": 20, "message.timeout.ms": 120_000}))
    for topic, key, value in events(n, sessions, int(time.time() * 1000)):
        while True:
            try:
                p.produce(s.topic(topic), key=key, value=value)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0


async def raw_consume(s: Settings, n: int) -> float:
    """The ceiling: a plain aiokafka consumer of the same topics, from the first message to the n-th."""
    from aiokafka import AIOKafkaConsumer

    from livemetrics.settings import RAW_TOPICS

    c = AIOKafkaConsumer(
        *(s.topic(t) for t in RAW_TOPICS),
        bootstrap_servers=s.kafka_bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await c.start()
    try:
        got, t0 = 0, None
        while got < n:
            batch = await c.getmany(timeout_ms=1000, max_records=10_000)
            for msgs in batch.values():
                if t0 is None and msgs:
                    t0 = time.perf_counter()
                got += len(msgs)
        return got / (time.perf_counter() - t0)
    finally:
        await c.stop()


def committed(admin, s: Settings) -> int:
    from confluent_kafka import ConsumerGroupTopicPartitions

    from livemetrics.settings import RAW_TOPICS

    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(s.app_id)])[s.app_id].result(timeout=30)
    raw = {s.topic(t) for t in RAW_TOPICS}
    return sum(tp.offset for tp in res.topic_partitions if tp.topic in raw and tp.offset > 0)


def snapshot_totals(s: Settings) -> tuple[int, int]:
    """Over every seller's newest snapshot on live-metrics: the sum of ``active_sessions``, and of every
    ``rates_per_minute`` series (every event the bench produces is counted in one of them)."""
    from confluent_kafka import Consumer

    from livemetrics.kafka_config import consumer_config

    c = Consumer(consumer_config(s, f"bench-snap-{uuid.uuid4().hex[:6]}"))
    c.subscribe([s.topic("live-metrics")])
    import json

    latest, idle = {}, time.monotonic()
    while time.monotonic() - idle < 3:
        m = c.poll(0.2)
        if m is not None and not m.error():
            snap = json.loads(m.value())
            rated = sum(sum(v) for v in snap["rates_per_minute"]["series"].values())
            latest[m.key()] = (snap["active_sessions"], rated)
            idle = time.monotonic()
    c.close()
    return sum(a for a, _ in latest.values()), sum(r for _, r in latest.values())


def run(args) -> int:
    import psutil
    from confluent_kafka.admin import AdminClient

    from livemetrics.kafka_config import admin_config
    from livemetrics.topics import create_topics

    n = max(SESSIONS + 200_000, int(args.duration * 20_000))
    with tempfile.TemporaryDirectory(prefix="lm-bench-streams-") as tmp, ExitStack() as stack:
        bootstrap = own_broker(stack, Path(tmp), args.kafka)
        tag = uuid.uuid4().hex[:8]
        s = Settings(
            dev_mode=True,
            data_dir=Path(tmp) / "worker",
            kafka_bootstrap=bootstrap,
            topic_prefix=f"b{tag}.",
            app_id=f"bench-{tag}",
            partitions=3,
            store="rocksdb://",
        )
        create_topics(s)
        print(f"bench streams: producing {n} events ({SESSIONS} sessions)", file=sys.stderr)
        produce(s, n, SESSIONS)
        raw = asyncio.run(raw_consume(s, n))
        emit("streams", "raw_consume_events_per_s", raw, "events/s", events=n, client="aiokafka")
        log = open(Path(tmp) / "worker.log", "ab")
        worker = subprocess.Popen(
            livemetrics_argv("worker"),
            env=s.child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lifeline.preexec(),
        )  # ends with this process, however it ends
        admin = AdminClient(admin_config(s))
        try:
            first = last = None  # (time, committed, worker CPU seconds) at the first and last progress seen
            proc = psutil.Process(worker.pid)

            def cpu_s() -> float:
                t = proc.cpu_times()
                return t.user + t.system

            deadline = time.monotonic() + max(600, args.duration * 60)
            while (done := committed(admin, s)) < n:
                if worker.poll() is not None:
                    raise RuntimeError(f"worker died; see {tmp}/worker.log")
                if time.monotonic() > deadline and first is not None:
                    # Too slow to reach 1 M sessions in time: report the rate seen, marked incomplete.
                    emit(
                        "streams",
                        "worker_events_per_s",
                        (done - first[1]) / (time.monotonic() - first[0]),
                        "events/s",
                        events=done,
                        sessions=SESSIONS,
                        store=s.store,
                        completed=False,
                    )
                    return 1
                if done and first is None:
                    first = (time.monotonic(), done, cpu_s())
                time.sleep(0.25)
            last = (time.monotonic(), done, cpu_s())
            rate = (last[1] - first[1]) / (last[0] - first[0])
            # CPU time per event: what the worker itself spent, less moved by other load than the rate.
            cpu_us = (last[2] - first[2]) / (last[1] - first[1]) * 1e6
            emit(
                "streams",
                "worker_events_per_s",
                rate,
                "events/s",
                events=n,
                sessions=SESSIONS,
                store=s.store,
                cpu_us_per_event=round(cpu_us, 1),
            )
            active, rated = snapshot_totals(s)
            if active != SESSIONS:
                raise RuntimeError(f"snapshots count {active} active sessions, expected {SESSIONS}")
            if rated != n:
                raise RuntimeError(f"snapshots' per-minute rates count {rated} events, expected {n}")
            rss = psutil.Process(worker.pid).memory_info().rss / 2**20
            emit("streams", "rss_mib_at_1m_sessions", rss, "MiB", sessions=active, store=s.store)
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
    return 0
