"""Every alert carries its trust label (docs/security.md): a payment failure says which kind of key sent
it (stamped by the gateway), an error spike counts browser-reported failures too."""

from __future__ import annotations

from livemetrics.contract import Customer, Event, Payment, decode, encode
from streams import spikes
from streams.alerts import payment_failure_alert
from tests.unit.streams.test_rates_spikes import NOW, RULE, series_with


def failed(**kw) -> Event:
    return Event(
        event_id="e-1",
        type="payment_failed",
        seller_id="seller-a",
        session_id="sess-0001",
        ts=NOW,
        received_at=NOW,
        customer=Customer(email="ada@example.com"),
        payment=Payment(method="card", amount=20, currency="EUR", order_id="o-1"),
        **kw,
    )


def test_a_payment_alert_says_which_kind_of_key_sent_it():
    assert payment_failure_alert(failed(source="server"), None, NOW)["source"] == "server"
    assert payment_failure_alert(failed(source="browser"), None, NOW)["source"] == "browser"


def test_an_unstamped_event_counts_as_browser_reported():
    """Events from before the stamp (and any the gateway did not stamp) get the less trusted label."""
    ev = decode(encode(failed()))
    assert b'"source"' not in encode(failed())  # browser is the default: not written on the hot path
    assert payment_failure_alert(ev, None, NOW)["source"] == "browser"
    assert decode(encode(failed(source="server"))).source == "server"


def test_an_error_spike_is_labelled_browser_reported():
    alert = spikes.check("s", series_with(6, 4, 2, 98), NOW, RULE, None)
    assert alert["source"] == "browser"
