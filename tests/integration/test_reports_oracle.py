"""Every report against an oracle computed in Python from the same generated events: several sellers,
several days around a DST change, several time zones. Events go through Kafka and the real sink into
the real ClickHouse engine; reports are read through the API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from confluent_kafka import Producer

from api.main import create_api
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from livemetrics.contract import TOPIC_FOR_TYPE, encode
from livemetrics.kafka_config import producer_config
from livemetrics.keys import KeyRegistry
from tests.support.servers import ThreadServer, wait_until
from tests.unit.clickhouse import oracle

pytestmark = pytest.mark.integration
SELLERS = ("s-alpha", "s-beta", "s-gamma")


def produce(settings, events) -> None:
    p = Producer(producer_config(settings))
    for e in events:
        p.produce(settings.topic(TOPIC_FOR_TYPE[e.type]), key=e.session_id.encode(), value=encode(e))
        p.poll(0)
    assert p.flush(30) == 0


@pytest.fixture
def history(make_settings, add_seller, tmp_path):
    # small batches: a session's events land in several inserts, so the rollups' partial states and the
    # session facts' partial rows really have to be merged by the queries
    settings = make_settings(sink_batch_rows=200)
    now = datetime.now(timezone.utc)
    start = oracle.dst_transition_before(now) - timedelta(days=2)
    events = oracle.generate(7, SELLERS, start, days=4, sessions_per_seller=250)
    tokens = {s: add_seller(settings, s)[1] for s in SELLERS}
    migrate(settings)
    db = settings.clickhouse_database
    for table in ("session_facts", "rollup_traffic_hourly", "rollup_pages_hourly", "rollup_payments_hourly"):
        get_client(settings).command(f"SYSTEM STOP MERGES {db}.{table}")
    produce(settings, events)
    sink = EventSink(settings).start()
    try:
        wait_until(lambda: get_client(settings).query(f"SELECT count() FROM {db}.events").result_rows[0][0] == len(events),
                   60, interval=0.2, what="all events in ClickHouse")
    finally:
        sink.stop()
    rows, sessions = get_client(settings).query(f"SELECT count(), uniqExact(session) FROM {db}.session_facts").result_rows[0]
    assert rows > sessions * 1.2  # many sessions really are in several partial rows
    registry = KeyRegistry(settings).start()
    api = ThreadServer(create_api(settings, registry, run_sink=False)).start()
    wait_until(lambda: all(registry.record(t.split("_")[2]) for t in tokens.values()), 10, what="tokens loaded")
    try:
        yield {"events": events, "start": start, "api": api, "tokens": tokens}
    finally:
        api.stop()
        registry.stop()


def fetch(h, seller, report, start, end, tz):
    r = httpx.get(f"{h['api'].url}/v1/sellers/{seller}/reports/{report}",
                  params={"from": start.isoformat(), "to": end.isoformat(), "tz": tz},
                  headers={"Authorization": f"Bearer {h['tokens'][seller]}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def pick(rows, keys):
    return [{k: r[k] for k in keys} for r in rows]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"])
def test_every_report_matches_the_oracle(history, tz):
    events = history["events"]
    # a range that does not start on a whole hour, and spans the DST change
    start = history["start"] + timedelta(hours=7, minutes=20)
    end = start + timedelta(days=3, hours=2)
    for seller in SELLERS:
        want = oracle.reports(events, seller, start, end, tz)
        got = {name: fetch(history, seller, name, start, end, tz) for name in want}
        assert got["hourly"]["rows"] == want["hourly"]["rows"]
        assert len(want["hourly"]["rows"]) > 24  # the data really spans the week grid
        for name in ("categories", "offers"):
            assert got[name]["rows"] == want[name]["rows"], name
        assert pick(got["funnel"]["rows"], ("step", "sessions", "abandoned")) == want["funnel"]["rows"]
        visit = want["funnel"]["rows"][0]["sessions"]
        assert got["funnel"]["rows"][2]["conversion_from_start"] == round(want["funnel"]["rows"][2]["sessions"] / visit, 4)
        methods = got["payment-methods"]["rows"]
        assert pick(methods, ("method", "started", "succeeded", "failed")) == \
            pick(want["payment-methods"]["rows"], ("method", "started", "succeeded", "failed"))
        for g, w in zip(methods, want["payment-methods"]["rows"]):
            assert {c: round(a, 2) for c, a in g["revenue"].items()} == w["revenue"]
            assert g["success_rate"] == round(w["succeeded"] / (w["succeeded"] + w["failed"]), 4)
        assert got["error-trends"]["rows"] == want["error-trends"]["rows"]
        assert pick(got["error-trends"]["top_causes"], ("error_code", "failures")) == want["error-trends"]["top_causes"]


def test_bad_report_parameters_are_named(history):
    seller = SELLERS[0]
    h = {"Authorization": f"Bearer {history['tokens'][seller]}"}
    base = f"{history['api'].url}/v1/sellers/{seller}/reports"
    r = httpx.get(f"{base}/hourly", params={"tz": "Mars/Olympus"}, headers=h)
    assert r.status_code == 422 and "Mars/Olympus" in r.text
    r = httpx.get(f"{base}/hourly", params={"from": "yesterday"}, headers=h)
    assert r.status_code == 422 and "`from`" in r.text
    r = httpx.get(f"{base}/hourly", params={"from": "2025-01-02", "to": "2025-01-01"}, headers=h)
    assert r.status_code == 422 and "before" in r.text
    r = httpx.get(f"{base}/weather", headers=h)
    assert r.status_code == 404 and "funnel" in r.text
    r = httpx.get(f"{history['api'].url}/v1/sellers/{SELLERS[1]}/reports/funnel", headers=h)
    assert r.status_code == 404
