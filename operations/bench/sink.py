"""``livemetrics bench sink``: rows/s from Kafka into ClickHouse through the sink, next to the fastest raw
bulk insert of the same rows (Arrow, already columnar) into the same schema, in the same run: Arrow
inserts one after another, and from two threads at once (the sink itself overlaps two steps); the
ceiling is the faster of the two.

Both insert in batches of ``--batch-rows`` (200,000 unless given): the sink's default (50,000) is sized
for latency at modest rates; under a backlog ClickHouse does far less work per row with bigger parts
(docs/clickhouse.md)."""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from livemetrics.contract import Checkout, Customer, Event, Item, Page, Payment, encode
from livemetrics.settings import Settings
from operations.bench import emit
from operations.bench.procs import own_broker


def sample_events(n: int, seed: int = 1) -> list[bytes]:
    """Encoded events shaped like storefront traffic: mostly page views, some checkouts and payments."""
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    cats, out = [f"cat-{i}" for i in range(50)], []
    for i in range(n):
        sid, ts, r = f"sess-{i // 12:010d}", now - rnd.randrange(86_400_000), rnd.random()
        common = dict(
            event_id=str(uuid.UUID(int=rnd.getrandbits(128))),
            seller_id=f"seller-{i // 12 % 20}",
            session_id=sid,
            ts=ts,
            received_at=ts,
            ip_hash="9f8e7d",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131",
            browser="Chrome",
            os="Linux",
            device="Other",
        )
        if r < 0.85:
            e = Event(type="page_view", page=Page(type="category", category=rnd.choice(cats), path="/c"), **common)
        elif r < 0.93:
            e = Event(
                type="checkout_started",
                checkout=Checkout(
                    items=[Item(sku="A-1", name="Lamp", qty=1, unit_price=20.0)], total=20.0, currency="EUR"
                ),
                customer=Customer(email="a@example.com", phone="+4930123"),
                **common,
            )
        else:
            e = Event(
                type=rnd.choice(("payment_succeeded", "payment_failed")),
                customer=Customer(email="a@example.com"),
                payment=Payment(
                    method="card",
                    amount=20.0,
                    currency="EUR",
                    order_id="o-1",
                    error_code="declined",
                    error_message="Declined",
                    details={"psp": "x"},
                ),
                **common,
            )
        out.append(encode(e))
    return out


def run(args) -> int:
    from confluent_kafka import Producer

    from clickhouse.client import close_all, get_client
    from clickhouse.migrate import migrate
    from clickhouse.sink import EventSink
    from livemetrics.kafka_config import producer_config
    from livemetrics.topics import create_topics
    from operations.bench.events_arrow import decode_events, events_table

    batch_rows = args.batch_rows
    if batch_rows < 1:
        raise SystemExit("--batch-rows must be at least 1")
    n = max(200_000, int(args.duration * 100_000))
    with tempfile.TemporaryDirectory(prefix="lm-bench-sink-") as tmp, ExitStack() as stack:
        bootstrap = own_broker(stack, Path(tmp), args.kafka)
        tag = uuid.uuid4().hex[:8]
        dsn = args.clickhouse or f"chdb://{tmp}/chdb"
        s = Settings(
            dev_mode=True,
            data_dir=Path(tmp),
            kafka_bootstrap=bootstrap,
            clickhouse_dsn=dsn,
            topic_prefix=f"b{tag}.",
            clickhouse_database=f"bench_sink_{tag}",
            sink_group=f"bench-{tag}",
            partitions=3,
            sink_batch_rows=batch_rows,
        )
        create_topics(s)
        migrate(s)
        values = sample_events(n)
        # the ceiling: the same rows, already columnar, in Arrow inserts of the same batch size into the
        # same schema (views included) with the same settings; one 1 M-row insert was no faster
        events, _ = decode_events(values)
        table = events_table(events, ["t"] * n, [0] * n, list(range(n)))
        del events
        raw_rates = {streams: raw_insert_rate(s, table, streams, batch_rows) for streams in (1, 2)}
        del table
        # the load must arrive whole on a busy machine: no 5 s delivery timeout
        p = Producer(producer_config(s, **{"linger.ms": 20, "message.timeout.ms": 300_000}))
        for v in values:
            while True:
                try:
                    p.produce(s.topic("page-events"), value=v)
                    break
                except BufferError:
                    p.poll(0.05)
        if p.flush(300):
            raise RuntimeError("the benchmark's events were not all delivered to Kafka")
        sink = EventSink(s).start()
        count = f"SELECT count() FROM {s.clickhouse_database}.events"
        # the clock starts at the first stored batch: the consumer group's join is not throughput
        started = time.monotonic()
        while (first := get_client(s).query(count).result_rows[0][0]) == 0:
            if time.monotonic() - started > 120:
                raise RuntimeError("the sink stored nothing within 120 s")
            time.sleep(0.01)
        t0 = time.perf_counter()
        stored, progress_at = first, time.monotonic()
        while stored < n:
            time.sleep(0.05)
            now_stored = get_client(s).query(count).result_rows[0][0]
            if now_stored > stored:
                stored, progress_at = now_stored, time.monotonic()
            elif time.monotonic() - progress_at > 120:
                raise RuntimeError(f"the sink stored {stored} of {n} rows and made no progress for 120 s")
        sink_s = time.perf_counter() - t0
        sink.stop()
        close_all()  # chdb closed before its directory goes (background merges would still write there)
        emit("sink", "sink_rows_per_s", (n - first) / sink_s, "rows/s", rows=n - first, batch_rows=batch_rows)
        for streams, rate in raw_rates.items():
            emit("sink", f"raw_insert_{streams}_stream_rows_per_s", rate, "rows/s", rows=n, batch_rows=batch_rows)
        emit(
            "sink",
            "raw_insert_rows_per_s",
            max(raw_rates.values()),
            "rows/s",
            rows=n,
            batch_rows=batch_rows,
            streams=max(raw_rates, key=raw_rates.get),
        )
    return 0


def raw_insert_rate(s, table, streams: int, batch_rows: int) -> float:
    """Rows/s of Arrow inserts of ``table`` in ``batch_rows`` slices into a fresh database of the same
    schema, from ``streams`` threads (one client each); the database is dropped after."""
    import threading

    from clickhouse.client import EVENTS_INSERT_SETTINGS, get_client
    from clickhouse.migrate import migrate

    raw = s.model_copy(update={"clickhouse_database": f"{s.clickhouse_database}_raw{streams}"})
    migrate(raw)
    slices = [table.slice(i, batch_rows) for i in range(0, table.num_rows, batch_rows)]

    def insert(mine: list) -> None:
        for part in mine:
            get_client(raw).insert_arrow(f"{raw.clickhouse_database}.events", part, settings=EVENTS_INSERT_SETTINGS)

    threads = [threading.Thread(target=insert, args=(slices[k::streams],)) for k in range(streams)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    stored = get_client(raw).query(f"SELECT count() FROM {raw.clickhouse_database}.events").result_rows[0][0]
    if stored != table.num_rows:
        raise RuntimeError(f"the raw insert stored {stored} of {table.num_rows} rows")
    # its background merges must not run during the next measurement
    get_client(raw).command(f"DROP DATABASE {raw.clickhouse_database} SYNC")
    return table.num_rows / elapsed
