"""Migration 006 on the real engine: a database of migrations 001-005 with rows in it comes over to
server-time partitions and decimal money with every row and value kept, the views still feeding the
rollups; re-runnable after an interruption; partitions and personal-data TTLs follow `received_at`, so
one sink batch whose `ts` spans 150 months is stored."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from clickhouse import table_swap
from clickhouse.client import get_client
from clickhouse.columns import alerts_table
from clickhouse.migrate import migrate, migration_files, statements
from livemetrics.contract import MONEY_TYPE, PII_COLUMNS, Checkout, Customer, Event, Item, Page, Payment, encode
from tests.integration.test_clickhouse_events_json import insert
from tests.support import oracle
from tests.support.old_schema import schema_before

pytestmark = pytest.mark.integration

NOW_MS = int(time.time() * 1000)
ROLLUPS = {  # table -> its key columns and what a row sums to (states merged)
    "rollup_traffic_hourly": (
        "seller_id, hour",
        "sum(page_views), uniqMerge(sessions), sum(checkouts), sum(purchases)",
    ),
    "rollup_pages_hourly": ("seller_id, hour, page_type, category, offer_id", "sum(views), uniqMerge(sessions)"),
    "rollup_payments_hourly": (
        "seller_id, hour, payment_method, error_code, currency",
        "sum(started), sum(succeeded), sum(failed), anyLast(message), sum(revenue)",
    ),
}


def old_schema(settings) -> None:
    """The database as deployed before migration 006."""
    schema_before(settings, 6)


def payment(amount: str, ts: int, seller: str = "s-money") -> Event:
    a = Decimal(amount)
    return Event(
        event_id=str(uuid.uuid4()),
        type="payment_succeeded",
        seller_id=seller,
        session_id="sess-money-1",
        ts=ts,
        received_at=ts + 5,
        payment=Payment(
            method="card",
            amount=a,
            currency="EUR",
            order_id="o-1",
            items=[Item(sku="s", name="n", qty=1, unit_price=a)],
        ),
    )


def money_events() -> list[Event]:
    """Amounts whose float sums are not exact (0.1 + 0.2, 0.7 + 0.1) in one hour."""
    hour = NOW_MS - NOW_MS % 3_600_000 - 7_200_000
    return [payment(a, hour + i * 1000) for i, a in enumerate(("0.1", "0.2", "0.7", "0.1", "59.90"))]


def alert(i: int, amount: str) -> dict:
    return {
        "kind": "payment_failed",
        "alert_id": f"al-{i}",
        "seller_id": "s-money",
        "session_id": "sess-money-1",
        "at": NOW_MS - i * 60_000,
        "customer": {"email": "a@example.com"},
        "order": {"order_id": f"o-{i}", "amount": amount, "currency": "EUR", "items": None},
        "payment": {"method": "card", "error_code": "declined", "error_message": "no", "details": None},
    }


def snapshot(settings) -> dict[str, list]:
    """Every table's rows (raw tables as rows, rollups as merged sums per key), money as exact text."""
    c, db = get_client(settings), settings.clickhouse_database
    out = {}
    for table, order in (("events", "kafka_topic, kafka_partition, kafka_offset"), ("payment_errors", "alert_id")):
        money = "total" if table == "events" else "amount"
        # a float read back as its shortest text is the value the old table held (59.9, not 59.899...)
        res = c.query(f"SELECT * REPLACE (toString({money}) AS {money}) FROM {db}.{table} ORDER BY {order}")
        i = res.column_names.index(money) if res.result_rows else 0
        out[table] = [row[:i] + (Decimal(row[i]).normalize(),) + row[i + 1 :] for row in res.result_rows]
    for table, (key, sums) in ROLLUPS.items():
        rows = c.query(f"SELECT {key}, {sums} FROM {db}.{table} GROUP BY {key} ORDER BY {key}").result_rows
        out[table] = [r[:-1] + (_revenue(r[-1]),) if table == "rollup_payments_hourly" else r for r in rows]
    return out


def _revenue(v: float | Decimal) -> Decimal:
    """A float sum of money (before) at the scale the migration keeps, or the decimal sum (after)."""
    return Decimal(repr(round(v, 4)) if isinstance(v, float) else v).normalize()


def test_an_old_database_comes_over_with_every_row_and_value(make_settings):
    settings = make_settings()
    old_schema(settings)
    c, db = get_client(settings), settings.clickhouse_database
    events = (
        oracle.generate(11, ("s-one", "s-two"), datetime.now(UTC) - timedelta(days=3), days=3, sessions_per_seller=40)
        + money_events()
    )
    for i in range(0, len(events), 200):  # several inserts: several parts, rows of one rollup key apart
        insert(settings, [encode(e) for e in events[i : i + 200]])
    alerts = [alert(i, a) for i, a in enumerate(("59.90", "0.1", "0.30000000000000004", "1000000000000"))]
    c.insert_arrow(f"{db}.payment_errors", alerts_table(alerts, ["t.alerts"] * 4, [0] * 4, list(range(4))))
    before = snapshot(settings)
    assert len(before["events"]) == len(events) and len(before["payment_errors"]) == 4
    assert all(before[t] for t in ROLLUPS)

    assert migrate(settings)[:1] == ["006_server_time_decimal"]  # first; later ones (009...) follow
    assert migrate(settings) == []
    assert snapshot(settings) == before
    tables = {r[0] for r in c.query(f"SHOW TABLES FROM {db}").result_rows}
    assert not {t for t in tables if t.endswith(table_swap.SUFFIX)}
    types = dict(c.query(f"SELECT table || '.' || name, type FROM system.columns WHERE database = '{db}'").result_rows)
    assert types["events.total"] == types["payment_errors.amount"] == MONEY_TYPE
    assert types["rollup_payments_hourly.revenue"] == "SimpleAggregateFunction(sum, Decimal(38, 4))"
    revenue = c.query(f"SELECT sum(revenue) FROM {db}.rollup_payments_hourly WHERE seller_id = 's-money'").result_rows
    assert revenue == [(Decimal("61"),)]  # 0.1 + 0.2 + 0.7 + 0.1 + 59.90

    # the views were re-pointed: new events reach the new rollups (summed exactly) and the sink's offsets
    more = [payment(a, NOW_MS + i, seller="s-new") for i, a in enumerate(("0.1", "0.2", "1000000000000"))]
    insert(settings, [encode(e) for e in more], topic="t.payment-events")
    assert c.query(f"SELECT sum(revenue) FROM {db}.rollup_payments_hourly WHERE seller_id = 's-new'").result_rows == [
        (Decimal("1000000000000.3"),)
    ]
    assert c.query(f"SELECT sum(total) FROM {db}.events WHERE seller_id = 's-new'").result_rows == [
        (Decimal("1000000000000.3"),)
    ]
    assert c.query(
        f"SELECT max(max_offset) FROM {db}.sink_offsets WHERE kafka_topic = 't.payment-events'"
    ).result_rows == [(1002,)]


def test_an_interrupted_swap_is_finished_by_the_next_run(make_settings):
    settings = make_settings()
    old_schema(settings)
    c, db = get_client(settings), settings.clickhouse_database
    events = money_events()
    insert(settings, [encode(e) for e in events], topic="t.payment-events")
    before = snapshot(settings)
    for stmt in statements(dict((v, s) for v, _, s in migration_files())[6], settings):
        c.command(stmt)
    # interrupted mid-way: a partial copy in one table; another one swapped, its old rows not dropped yet;
    # a third one swapped and its __next made again by a re-run of the migration's statements
    c.command(
        f"INSERT INTO {db}.events__next SELECT * REPLACE (toDecimal64(total, 4) AS total) FROM {db}.events LIMIT 2"
    )
    c.command(f"INSERT INTO {db}.rollup_pages_hourly__next SELECT * FROM {db}.rollup_pages_hourly")
    c.command(f"EXCHANGE TABLES {db}.rollup_pages_hourly AND {db}.rollup_pages_hourly__next")
    assert table_swap.swap_in(c, db, "rollup_traffic_hourly")
    c.command(f"CREATE TABLE {db}.rollup_traffic_hourly__next AS {db}.rollup_traffic_hourly")

    assert migrate(settings)[:1] == ["006_server_time_decimal"]  # first; later ones (009...) follow
    assert snapshot(settings) == before


class SinkWritesDuringTheCopy:
    """The real client; a sink "writes" one batch (through the real insert path) right after the copy."""

    def __init__(self, client, write):
        self._c, self._write = client, write

    def __getattr__(self, name):
        return getattr(self._c, name)

    def command(self, sql, *a, **kw):
        out = self._c.command(sql, *a, **kw)
        if sql.startswith("INSERT INTO") and "events__next" in sql and self._write:
            self._write()
            self._write = None
        return out


def test_a_table_a_sink_writes_to_during_the_copy_is_not_swapped(make_settings):
    settings = make_settings()
    old_schema(settings)
    c, db = get_client(settings), settings.clickhouse_database
    insert(settings, [encode(e) for e in money_events()])
    late = [payment("1.5", NOW_MS, seller="s-late")]
    for stmt in statements(dict((v, s) for v, _, s in migration_files())[6], settings):
        c.command(stmt)
    racing = SinkWritesDuringTheCopy(c, lambda: insert(settings, [encode(e) for e in late]))
    with pytest.raises(table_swap.SwapError, match="stop every sink"):
        table_swap.swap_in(racing, db, "events")
    assert c.query(f"SELECT comment FROM system.tables WHERE database = '{db}' AND name = 'events'").result_rows == [
        ("",)
    ]
    before = snapshot(settings)
    assert len(before["events"]) == len(money_events()) + 1
    assert migrate(settings)[:1] == ["006_server_time_decimal"]  # the sink stopped: the next run brings all over
    assert snapshot(settings) == before


def test_partitions_and_personal_data_ttls_follow_received_at(make_settings):
    settings = make_settings()
    migrate(settings)
    c, db = get_client(settings), settings.clickhouse_database
    keys = dict(c.query(f"SELECT name, partition_key FROM system.tables WHERE database = '{db}'").result_rows)
    assert keys["events"] == "toYYYYMM(received_at)" and keys["payment_errors"] == "toYYYYMM(at)"
    assert keys["rollup_traffic_hourly"] == keys["rollup_pages_hourly"] == keys["rollup_payments_hourly"] == ""
    for table, time_col in (("events", "received_at"), ("payment_errors", "at")):
        ttl = {r[0]: r[6] for r in c.query(f"DESCRIBE TABLE {db}.{table}").result_rows}
        assert all(ttl[col].startswith(f"toDateTime({time_col}) + ") for col in PII_COLUMNS), ttl
    # a backfilled event from long ago arrives now: its row and its personal data are kept (by arrival)
    old = NOW_MS - 300 * 86_400_000
    e = Event(
        event_id=str(uuid.uuid4()),
        type="checkout_started",
        seller_id="s-late",
        session_id="sess-late-1",
        ts=old,
        received_at=NOW_MS,
        backfill=True,
        checkout=Checkout(items=[], total=Decimal("5"), currency="EUR"),
        customer=Customer(email="late@example.com"),
    )
    insert(settings, [encode(e)], topic="t.checkout-events")
    c.command(f"OPTIMIZE TABLE {db}.events FINAL")
    assert c.query(f"SELECT customer_email FROM {db}.events WHERE seller_id = 's-late'").result_rows == [
        ("late@example.com",)
    ]


def test_one_batch_whose_ts_spans_150_months_is_stored(make_settings):
    settings = make_settings()
    migrate(settings)
    c, db = get_client(settings), settings.clickhouse_database
    month_ms = 31 * 86_400_000  # one event a month back from now, 150 months
    events = [
        Event(
            event_id=str(uuid.uuid4()),
            type="page_view",
            seller_id="hostile",
            session_id=f"sess-{i:06d}",
            ts=NOW_MS - i * month_ms,
            received_at=NOW_MS,
            page=Page(type="home"),
        )
        for i in range(150)
    ]
    insert(settings, [encode(e) for e in events])
    assert c.query(f"SELECT count(), uniqExact(toYYYYMM(ts)) FROM {db}.events").result_rows == [(150, 150)]
    parts = c.query(
        f"SELECT table, uniqExact(partition) FROM system.parts WHERE database = '{db}' AND active "
        "AND table IN ('events', 'rollup_traffic_hourly', 'rollup_pages_hourly') GROUP BY table"
    ).result_rows
    assert dict(parts) == {"events": 1, "rollup_traffic_hourly": 1, "rollup_pages_hourly": 1}
    # the rollups' rows older than the event TTL (by sender hour) are dropped at their next merge; the rest count
    recent = c.query(f"SELECT sum(page_views) FROM {db}.rollup_traffic_hourly WHERE hour > now() - INTERVAL 390 DAY")
    assert recent.result_rows == [(sum(1 for e in events if e.ts > NOW_MS - 390 * 86_400_000),)]
