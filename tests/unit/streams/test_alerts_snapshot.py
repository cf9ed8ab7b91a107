"""Payment-failure alerts and snapshots (pure)."""

from __future__ import annotations

from livemetrics.contract import Checkout, Customer, Event, Item, Page, Payment
from livemetrics.snapshot import build_snapshot, iso
from streams import state as sm
from streams.alerts import payment_failure_alert

W = sm.Windows()
T0 = 1_700_000_000_000


def e(i: int, type_: str, at: int, **kw) -> Event:
    return Event(
        event_id=f"e-{i}", type=type_, seller_id="seller-a", session_id="sess-0001", ts=at, received_at=at, **kw
    )


def test_alert_carries_customer_order_error_and_session_context():
    st = None
    for i, (t, kw) in enumerate(
        [
            ("page_view", {"page": Page(type="category", category="lamps")}),
            ("page_view", {"page": Page(type="offer", offer_id="o-1")}),
            (
                "checkout_started",
                {
                    "checkout": Checkout(
                        items=[Item(sku="L", name="Lamp", qty=2, unit_price=10.0)], total=20.0, currency="EUR"
                    )
                },
            ),
        ]
    ):
        st, _ = sm.apply_event(st, e(i, t, T0 + i * 1000, **kw), T0 + i * 1000, W)
    failed = e(
        9,
        "payment_failed",
        T0 + 65_000,
        customer=Customer(email="ada@example.com", phone="+44 1", name="Ada"),
        payment=Payment(
            method="card",
            amount=20.0,
            currency="EUR",
            order_id="ord-1",
            error_code="declined",
            error_message="Insufficient funds",
            details={"psp": "x"},
        ),
        ip="203.0.113.9",
    )
    a = payment_failure_alert(failed, st, T0 + 65_250)
    assert a["kind"] == "payment_failed" and a["alert_id"] == "e-9" and a["seller_id"] == "seller-a"
    assert a["customer"] == {"email": "ada@example.com", "phone": "+44 1", "name": "Ada"}
    assert a["order"]["order_id"] == "ord-1" and a["order"]["amount"] == 20.0
    assert a["order"]["items"] == [{"sku": "L", "name": "Lamp", "qty": 2, "unit_price": 10.0}]  # from the checkout
    assert a["payment"] == {
        "method": "card",
        "error_code": "declined",
        "error_message": "Insufficient funds",
        "details": {"psp": "x"},
    }
    ctx = a["context"]
    assert ctx["pages_seen"] == 2 and [t["location"] for t in ctx["trail"]] == ["category:lamps", "offer:o-1"]
    assert ctx["cart"]["total"] == 20.0 and ctx["time_in_checkout_s"] == 63.0
    assert a["latency_ms"] == 250 and a["client"]["ip"] == "203.0.113.9"


def test_alert_without_session_context():
    failed = e(1, "payment_failed", T0, payment=Payment(method="wallet", amount=5.0, currency="EUR", order_id="o"))
    a = payment_failure_alert(failed, None, T0)
    assert a["context"] == {} and a["customer"] == {} and a["order"]["items"] is None


def test_snapshot_shape_and_windows():
    totals = {
        "live:home": 2,
        "live:category:lamps": 3,
        "live:offer:o-1": 1,
        "live:checkout": 1,
        "live:other": 1,
        "active": 9,
        "purchased": 1,
        "failures": 2,
        "abandoned:payment": 1,
    }
    snap = build_snapshot("seller-a", totals, W, recovering=True, as_of_ms=T0)
    assert snap["live"] == {
        "home": 2,
        "category": {"lamps": 3},
        "offer": {"o-1": 1},
        "product": 0,
        "cart": 0,
        "other": 1,
        "checkout": 1,
        "payment": 0,
    }
    assert snap["active_sessions"] == 9 and snap["purchased_30m"] == 1 and snap["payment_failures_30m"] == 2
    assert snap["abandoned_30m"] == {"checkout": 0, "payment": 1}
    assert snap["window_s"] == 300 and snap["session_timeout_s"] == 1800 and snap["recovering"] is True
    assert snap["as_of_ms"] == T0 and snap["as_of"] == iso(T0) == "2023-11-14T22:13:20.000Z"
    assert set(snap["windows"]) == {"live", "active_sessions", "purchased_30m", "payment_failures_30m", "abandoned_30m"}
    assert "rates_per_minute" not in snap
    assert "rates_per_minute" in build_snapshot("s", {}, W, rates={"buckets": 60})["windows"]


def test_snapshot_windows_follow_the_settings():
    snap = build_snapshot("s", {}, sm.Windows(live_ms=120_000, timeout_ms=600_000, recent_ms=900_000), as_of_ms=T0)
    assert snap["window_s"] == 120 and snap["windows"]["live"] == "last 120 s"
    assert snap["session_timeout_s"] == 600 and snap["windows"]["active_sessions"] == "last 600 s"
    assert snap["windows"]["purchased_30m"] == snap["windows"]["payment_failures_30m"] == "last 900 s"
    assert snap["windows"]["abandoned_30m"] == "sessions that ended in the last 900 s"
