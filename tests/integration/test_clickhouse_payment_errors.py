"""Payment-error history: alerts from the payment-alerts topic through the sink, listed newest first with
pagination and filters, status changes stored, personal data only for tokens allowed to read it, and
erasure of a customer's personal data everywhere (admin route used by `livemetrics erase`)."""

from __future__ import annotations

import time

import httpx
import msgspec
import pytest

from api.main import create_api
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from livemetrics.contract import TOPIC_FOR_TYPE, decode, encode
from livemetrics.keys import KeyRegistry
from streams.alerts import payment_failure_alert
from tests.support import factories as f
from tests.support.kafka_write import writer
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration


def as_event(d: dict, seller: str, at: int):
    d = {**d, "seller_id": seller, "received_at": at, "ts": at, "ip": "203.0.113.9"}
    return decode(msgspec.json.encode(d))


@pytest.fixture
def stack(make_settings, add_seller):
    # the sink stores a batch 0.2 s after its first row, not the default 2 s: each test waits for the rows here
    settings = make_settings(sink_batch_seconds=0.2)
    pii_token = add_seller(settings, "shop-1")[1]
    masked_token = add_seller(settings, "shop-1", can_read_pii=False)[1]
    other_token = add_seller(settings, "shop-2")[1]
    migrate(settings)
    now = int(time.time() * 1000)
    failures = [
        as_event(
            f.payment_failed(
                customer=f.customer(email=f"c{i}@example.com"),
                payment_overrides={"method": "card" if i % 2 else "paypal"},
            ),
            "shop-1",
            now - i * 1000,
        )
        for i in range(5)
    ]
    failures.append(as_event(f.payment_failed(customer=f.customer(email="z@example.com")), "shop-2", now))
    alerts = [payment_failure_alert(e, None, now) for e in failures]
    alerts.append(
        {
            "kind": "error_spike",
            "alert_id": "spike-1",
            "seller_id": "shop-1",
            "session_id": "",
            "at": now - 10_000,
            "customer": {},
            "order": {},
            "payment": {"method": "card", "error_code": "card_declined"},
            "client": {},
            "context": {"failures": 12, "window_s": 60},
            "threshold": 10,
        }
    )
    p = writer(settings)
    for a in alerts + alerts[:2]:  # two redelivered
        p.produce(settings.topic("payment-alerts"), key=a["seller_id"].encode(), value=msgspec.json.encode(a))
    for e in failures:
        p.produce(settings.topic(TOPIC_FOR_TYPE[e.type]), key=e.session_id.encode(), value=encode(e))
    assert p.flush(30) == 0
    sink = EventSink(settings).start()
    db = settings.clickhouse_database
    try:
        wait_until(
            lambda: (
                get_client(settings).query(f"SELECT count() FROM {db}.payment_errors FINAL").result_rows[0][0] == 7
                and get_client(settings).query(f"SELECT count() FROM {db}.events").result_rows[0][0] == 6
            ),
            30,
            what="rows",
        )
    finally:
        sink.stop()
    registry = KeyRegistry(settings).start()
    api = ThreadServer(create_api(settings, registry, run_sink=False)).start()
    wait_until(
        lambda: all(registry.record(t.split("_")[2]) for t in (pii_token, masked_token, other_token)), 10, what="keys"
    )
    try:
        yield {"api": api, "pii": pii_token, "masked": masked_token, "other": other_token, "settings": settings}
    finally:
        api.stop()
        registry.stop()


def get(stack, token, seller="shop-1", **params):
    return httpx.get(
        f"{stack['api'].url}/v1/sellers/{seller}/payment-errors",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )


def test_list_is_newest_first_paginated_and_filtered(stack):
    seen, cursor = [], None
    for _ in range(10):
        r = get(stack, stack["pii"], limit=2, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert [a["alert_id"] for a in seen][:1] != ["spike-1"] and len(seen) == 6
    ats = [a["at"] for a in seen]
    assert ats == sorted(ats, reverse=True)
    first = seen[0]
    assert first["customer"]["email"] == "c0@example.com" and first["status"] == "open"
    assert first["payment"]["error_code"] == "card_declined" and first["payment"]["details"] == {
        "gateway": "psp-x",
        "attempt": 1,
    }
    assert first["client"]["ip"] == "203.0.113.9" and first["order"]["order_id"].startswith("ord-")
    spike = next(a for a in seen if a["alert_id"] == "spike-1")
    assert (
        spike["kind"] == "error_spike"
        and spike["context"] == {"failures": 12, "window_s": 60}
        and spike["threshold"] == 10
    )
    assert {a["payment"]["method"] for a in get(stack, stack["pii"], method="paypal").json()["items"]} == {"paypal"}
    assert len(get(stack, stack["pii"], method="paypal").json()["items"]) == 3
    assert get(stack, stack["pii"], cursor="garbage!").status_code == 422
    assert get(stack, stack["pii"], status="lost").status_code == 422
    assert get(stack, stack["pii"], **{"from": "soon"}).status_code == 422


def test_status_changes_are_stored_and_filterable(stack):
    alert_id = get(stack, stack["pii"]).json()["items"][1]["alert_id"]
    url = f"{stack['api'].url}/v1/sellers/shop-1/payment-errors/{alert_id}/status"
    h = {"Authorization": f"Bearer {stack['pii']}"}
    r = httpx.post(url, json={"status": "contacted", "note": "called, will retry"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "contacted"
    r = httpx.post(url, json={"status": "resolved", "note": "paid"}, headers=h)
    assert r.status_code == 200
    items = get(stack, stack["pii"], status="resolved").json()["items"]
    assert [(a["alert_id"], a["note"]) for a in items] == [(alert_id, "paid")] and items[0]["status_at"]
    assert alert_id not in [a["alert_id"] for a in get(stack, stack["pii"], status="open").json()["items"]]
    assert httpx.post(url, json={"status": "maybe"}, headers=h).status_code == 422
    assert httpx.post(url.replace(alert_id, "nope"), json={"status": "open"}, headers=h).status_code == 404
    other = {"Authorization": f"Bearer {stack['other']}"}
    assert httpx.post(url, json={"status": "open"}, headers=other).status_code == 404


def test_personal_data_only_for_tokens_allowed_to_read_it(stack):
    masked = get(stack, stack["masked"]).json()["items"][0]
    assert "c0@example.com" not in str(masked) and masked["client"]["ip"] is None and masked["pii_masked"]
    assert get(stack, stack["other"]).status_code == 404
    assert get(stack, stack["other"], seller="shop-2").json()["items"][0]["customer"]["email"] == "z@example.com"


def test_erase_removes_a_customer_everywhere(stack):
    s = stack["settings"]
    url = f"{stack['api'].url}/v1/admin/erase"
    assert (
        httpx.post(
            url, json={"email": "c1@example.com"}, headers={"Authorization": f"Bearer {stack['pii']}"}
        ).status_code
        == 403
    )
    alert_id = get(stack, stack["pii"]).json()["items"][1]["alert_id"]
    httpx.post(
        f"{stack['api'].url}/v1/sellers/shop-1/payment-errors/{alert_id}/status",
        json={"status": "contacted", "note": "wrote to C1@example.com"},
        headers={"Authorization": f"Bearer {stack['pii']}"},
    )
    admin = {"Authorization": f"Bearer {s.admin_token.get_secret_value()}"}
    r = httpx.post(url, json={"email": "C1@example.com"}, headers=admin, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == {"events": 1, "payment_errors": 1, "payment_error_status": 1}
    db, c = s.clickhouse_database, get_client(s)
    for table in ("events", "payment_errors"):
        assert (
            c.query(f"SELECT count() FROM {db}.{table} WHERE customer_email = 'c1@example.com'").result_rows[0][0] == 0
        )
    assert c.query(f"SELECT count() FROM {db}.events").result_rows[0][0] == 6  # the event stays, without PII
    assert c.query(f"SELECT count() FROM {db}.payment_error_status WHERE note ILIKE '%c1@%'").result_rows[0][0] == 0
    r = httpx.post(url, json={"phone": "+44 20 7946 0958"}, headers=admin, timeout=60)
    assert r.json()["removed"]["events"] == 5 and r.json()["removed"]["payment_errors"] == 5
    assert httpx.post(url, json={}, headers=admin).status_code == 422
