"""Stripe webhooks on a real gateway and broker: payloads and signatures built as Stripe documents them,
mapped onto payment events in Kafka (seller from the endpoint, source "stripe"), duplicates one event,
bad signatures and unknown endpoints refused, other types acknowledged and dropped."""

from __future__ import annotations

import time

import httpx
import msgspec
import pytest

from livemetrics import keys
from livemetrics.contract import decode
from livemetrics.keys import KeyRegistry
from livemetrics.provider_keys import new_provider_endpoint
from producers.gateway.app import create_gateway
from tests.support import stripe_events as se
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration
SECRET = "whsec_" + "k3yF0rTh3T3stEndp0int1234567890"


@pytest.fixture
def gw(settings):
    kek = settings.key_encryption_key.get_secret_value()
    rec = new_provider_endpoint("shop-s", "stripe", SECRET, kek)
    other = new_provider_endpoint("shop-t", "stripe", "whsec_another_sellers_secret_0000", kek)
    gone = new_provider_endpoint("shop-s", "stripe", SECRET, kek)
    for r in (rec, other, msgspec.structs.replace(gone, revoked=True)):
        keys.publish(settings, r)
    registry = KeyRegistry(settings).start()
    wait_until(lambda: registry.record(gone.key_id), 10, what="endpoints loaded")
    server = ThreadServer(create_gateway(settings, registry)).start()
    yield {"url": server.url, "id": rec.key_id, "other": other.key_id, "gone": gone.key_id, "s": settings}
    server.stop()
    registry.stop()


def deliver(gw, event: dict, endpoint: str | None = None, secret: str = SECRET, ts: int | None = None):
    body = se.body(event)
    return httpx.post(
        f"{gw['url']}/v1/providers/stripe/{endpoint or gw['id']}",
        content=body,
        timeout=20,
        headers={
            "Stripe-Signature": se.sign(body, secret, ts),
            "Content-Type": "application/json",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
    )


def test_failures_and_successes_arrive_once_each_as_the_sellers_payment_events(gw):
    failed = se.envelope("payment_intent.payment_failed", se.failed_intent())
    r1, r2 = deliver(gw, failed), deliver(gw, failed)  # Stripe delivers again
    r3 = deliver(gw, se.envelope("charge.failed", se.failed_charge()))  # the same failure, as a charge
    r4 = deliver(gw, se.envelope("payment_intent.succeeded", se.intent(id="pi_3OtherIntent0000000000")))
    assert [r.status_code for r in (r1, r2, r3, r4)] == [200] * 4, [r.text for r in (r1, r2, r3, r4)]
    assert r1.json()["event_id"] == r2.json()["event_id"] == r3.json()["event_id"] != r4.json()["event_id"]
    events = [decode(m.value()) for m in read_topic(gw["s"], "payment-events", 4)]
    assert len(events) == 4 and len({e.event_id for e in events}) == 2  # duplicates collapse downstream
    first = events[0]
    assert (first.type, first.seller_id, first.session_id, first.source) == (
        "payment_failed",
        "shop-s",
        "sess-stripe-0001",
        "stripe",
    )
    assert first.payment.error_code == "insufficient_funds" and str(first.payment.amount) == "59.90"
    assert first.customer.email == "ada@example.com" and first.customer.name == "Ada Lovelace"
    assert first.is_bot is False and first.backfill is False and first.ip is None
    assert {e.type for e in events} == {"payment_failed", "payment_succeeded"}


def test_forged_stale_foreign_and_unknown_deliveries_are_refused_and_nothing_reaches_kafka(gw):
    ev = se.envelope("payment_intent.payment_failed", se.failed_intent())
    forged = deliver(gw, ev, secret="whsec_guessed")
    stale = deliver(gw, ev, ts=int(time.time()) - 3600)
    foreign = deliver(gw, ev, endpoint=gw["other"])  # signed with shop-s's secret, sent to shop-t's endpoint
    revoked = deliver(gw, ev, endpoint=gw["gone"])
    unknown = deliver(gw, ev, endpoint="000000000000")
    assert (forged.status_code, stale.status_code, foreign.status_code) == (400, 400, 400)
    assert "no v1 signature matches" in forged.json()["error"] and "more than" in stale.json()["error"]
    assert revoked.status_code == unknown.status_code == 404
    ignored = deliver(gw, se.envelope("customer.created", {"id": "cus_1"}))
    assert ignored.status_code == 200 and ignored.json() == {"ignored": "customer.created"}
    assert read_topic(gw["s"], "payment-events", 0, timeout=3) == []


def test_a_delivery_later_than_the_live_clock_bound_is_stored_as_history_only(gw):
    two_days_ago = int(time.time()) - 2 * 86_400
    r = deliver(gw, se.envelope("payment_intent.payment_failed", se.failed_intent(), created=two_days_ago))
    assert r.status_code == 200 and r.json()["history_only"] is True
    (msg,) = read_topic(gw["s"], "payment-events", 1)
    ev = decode(msg.value())
    assert ev.backfill is True and ev.ts == two_days_ago * 1000  # never counted live, never alerted


def test_a_handled_type_the_contract_cannot_take_is_422_naming_why(gw):
    r = deliver(gw, se.envelope("payment_intent.succeeded", se.intent(currency="euro")))
    assert r.status_code == 422 and "not a currency code" in r.json()["error"]


def test_the_operator_registers_an_endpoint_and_stripe_delivers_to_it(settings, monkeypatch, capsys):
    import io

    from operations import processes
    from operations.cli import build_parser

    add = build_parser().parse_args(["sellers", "add-provider", "shop-cli", "stripe"])
    monkeypatch.setattr("sys.stdin", io.StringIO("sk_live_pasted_the_wrong_secret\n"))
    assert processes.sellers(settings, add) == 2
    assert "starts with whsec_" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert processes.sellers(settings, add) == 0
    path = capsys.readouterr().out.split()[1]
    assert path.startswith("/v1/providers/stripe/")
    registry = KeyRegistry(settings).start()
    wait_until(lambda: registry.record(path.rsplit("/", 1)[1]), 10, what="endpoint loaded")
    server = ThreadServer(create_gateway(settings, registry)).start()
    try:
        r = deliver(
            {"url": server.url, "id": path.rsplit("/", 1)[1]}, se.envelope("payment_intent.succeeded", se.intent())
        )
        assert r.status_code == 200 and r.json()["type"] == "payment_succeeded"
        rotate = build_parser().parse_args(["sellers", "rotate", path.rsplit("/", 1)[1]])
        assert processes.sellers(settings, rotate) == 1
        assert "add a new one with the provider's new signing secret" in capsys.readouterr().err
    finally:
        server.stop()
        registry.stop()
    (msg,) = read_topic(settings, "payment-events", 1)
    assert decode(msg.value()).seller_id == "shop-cli"


def test_hostile_signatures_and_odd_signed_bodies_get_clear_answers_never_a_500(gw):
    """Without the secret, a `t=` that str.isdigit takes but int() refuses ('²' of a Latin-1 header; over
    4,300 digits) raised ValueError before the signature was checked: a 500 for anyone who knew the
    endpoint's URL. Signed bodies of another shape than Stripe's (a list where `data` or an object
    belongs) raised AttributeError: a 500 Stripe retries for days. Now 400 and 422 naming why."""
    url = f"{gw['url']}/v1/providers/stripe/{gw['id']}"
    for header in (b"t=\xb2,v1=ab", b"t=" + b"1" * 5000 + b",v1=ab"):
        r = httpx.post(url, content=b"{}", headers={"Stripe-Signature": header}, timeout=20)
        assert r.status_code == 400 and "no timestamp" in r.json()["error"], (header[:20], r.status_code, r.text)
    odd = [
        se.envelope("charge.failed", se.failed_charge()) | {"data": []},
        se.envelope("charge.failed", se.failed_charge(payment_method_details="card", outcome="x")),
        se.envelope("payment_intent.payment_failed", se.intent(last_payment_error="declined")),
        se.envelope("payment_intent.payment_failed", se.failed_intent(receipt_email=None, shipping=["x"])),
    ]
    answers = [deliver(gw, ev) for ev in odd]
    assert [r.status_code for r in answers] == [422, 200, 200, 200], [r.text for r in answers]
    deep = b"[" * 5000  # signed, nested past the JSON decoder's recursion limit: RecursionError, a 500
    r = httpx.post(url, content=deep, headers={"Stripe-Signature": se.sign(deep, SECRET)}, timeout=20)
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"], (r.status_code, r.text)
    assert "data.object with an id is missing" in answers[0].json()["error"]
    assert len(read_topic(gw["s"], "payment-events", 3)) == 3
