"""Webhook signatures, retry delays and delivery ids (pure)."""

from __future__ import annotations

import hashlib
import hmac
import random

from hypothesis import given
from hypothesis import strategies as st

from api.notify import webhook
from api.notify.channels import new_channel, unseal
from api.notify.intake import deliveries_for
from api.privacy import mask_alert

SECRET = "whsec_test"


def test_signature_is_the_documented_hmac_and_verifies():
    body = b'{"alert_id":"a1"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhook.sign(SECRET, 1700000000, body) == f"v1={expected}"
    h = webhook.headers(SECRET, 1700000000, body, "a1", "dl_x", 3)
    assert h["Idempotency-Key"] == "a1" and h["X-Livemetrics-Attempt"] == "3"
    assert webhook.verify(SECRET, h["X-Livemetrics-Timestamp"], body, h["X-Livemetrics-Signature"], now=1700000100)


def test_verify_refuses_a_changed_body_an_old_timestamp_and_another_secret():
    body = b'{"alert_id":"a1"}'
    sig = webhook.sign(SECRET, 1700000000, body)
    assert not webhook.verify(SECRET, "1700000000", body + b" ", sig, now=1700000000)
    assert not webhook.verify(SECRET, "1700000000", body, sig, now=1700000000 + 301)
    assert not webhook.verify("whsec_other", "1700000000", body, sig, now=1700000000)
    assert not webhook.verify(SECRET, "soon", body, sig, now=1700000000)


@given(attempts=st.integers(1, 200), base=st.floats(0.01, 60), cap=st.floats(1, 7200), seed=st.integers())
def test_retry_delay_is_exponential_with_jitter_and_capped(attempts, base, cap, seed):
    d = webhook.retry_delay(attempts, base, cap, random.Random(seed))
    ceiling = min(cap, base * 2 ** (attempts - 1))
    assert ceiling / 2 <= d <= ceiling


def test_retries_stop_when_the_next_attempt_would_leave_the_window():
    assert not webhook.give_up(created_ms=0, now_ms=3_600_000, next_delay_s=60, retry_for_s=86_400)
    assert webhook.give_up(created_ms=0, now_ms=86_380_000, next_delay_s=60, retry_for_s=86_400)


def test_delivery_ids_are_per_seller_alert_and_channel():
    ids = {webhook.delivery_id(s, a, c) for s in ("s1", "s2") for a in ("a1", "a2") for c in ("c1", "c2")}
    assert len(ids) == 8 and webhook.delivery_id("s1", "a1", "c1") in ids


def test_a_sealed_signing_secret_opens_only_on_its_own_record_and_key():
    ch, secret = new_channel("shop-a", "webhook", "https://h.example/", kek="k" * 32)
    assert secret.startswith("whsec_") and unseal(ch, "k" * 32) == secret
    assert unseal(ch, "x" * 32) is None
    other, _ = new_channel("shop-b", "webhook", "https://evil.example/", kek="k" * 32)
    import msgspec

    copied = msgspec.structs.replace(other, secret_enc=ch.secret_enc)  # copied onto another seller's record
    assert unseal(copied, "k" * 32) is None


class _Book:
    def __init__(self, *channels):
        self.channels = channels

    def of_seller(self, seller, kind=None):
        return [c for c in self.channels if c.seller_id == seller and (kind is None or c.kind == kind)]


def test_deliveries_go_to_the_sellers_channels_only_masked_for_a_channel_without_pii():
    import msgspec

    full, _ = new_channel("shop-a", "webhook", "https://a.example/", kek="k" * 32)
    masked, _ = new_channel("shop-a", "webhook", "https://b.example/", kek="k" * 32, can_read_pii=False)
    email, _ = new_channel("shop-a", "email", "ops@a.example", kek="k" * 32)
    other, _ = new_channel("shop-b", "webhook", "https://c.example/", kek="k" * 32)
    alert = {
        "kind": "payment_failed",
        "alert_id": "e1",
        "seller_id": "shop-a",
        "customer": {"email": "ada@example.com", "phone": "+44 20 7946 0958", "name": "Ada Lovelace"},
    }
    out = deliveries_for(alert, _Book(full, masked, email, other), now_ms=5, email=False)  # no SMTP server
    assert {d.channel_id for d in out} == {full.channel_id, masked.channel_id}
    bodies = {d.channel_id: msgspec.json.decode(d.body) for d in out}
    assert bodies[full.channel_id] == alert
    assert bodies[masked.channel_id] == mask_alert(alert) and "ada@" not in out[1].body.decode()
    with_email = deliveries_for(alert, _Book(full, masked, email, other), now_ms=5)
    assert {d.channel_id for d in with_email} == {full.channel_id, masked.channel_id, email.channel_id}
    assert deliveries_for({"kind": "x", "seller_id": "shop-a"}, _Book(full), 5) == []  # no id: nothing to key on


def test_an_odd_alert_shape_makes_no_delivery_error():
    full, _ = new_channel("shop-a", "webhook", "https://a.example/", kek="k" * 32)
    odd = {
        "kind": "payment_failed",
        "alert_id": "e1",
        "seller_id": "shop-a",
        "order": "not an object",
        "customer": ["x"],
    }
    out = deliveries_for(odd, _Book(full), now_ms=5)  # sent as it is: the receiver sees what the topic held
    assert len(out) == 1


def test_the_docs_receiver_snippet_verifies_ours_and_refuses_hostile_timestamps_without_raising():
    """docs/notifications.md's `verified` (a receiver copies it): a header anyone can send to the receiver,
    `X-Livemetrics-Timestamp: \\xb2` (str.isdigit says yes, int() refuses it) or 5,000 digits, made the
    old snippet raise ValueError (the receiver's 500) instead of answering False."""
    import re
    import time
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "notifications.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", doc, re.S) if "def verified" in c]
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the documentation's own example
    verified = scope["verified"]
    body, now = b'{"alert_id":"a1"}', int(time.time())
    assert verified(SECRET, webhook.headers(SECRET, now, body, "a1", "dl_x", 1), body)
    assert not verified("whsec_other", webhook.headers(SECRET, now, body, "a1", "dl_x", 1), body)
    for ts in ("\xb2", "1" * 5000, "", "12.5"):
        assert not verified(SECRET, {"X-Livemetrics-Timestamp": ts, "X-Livemetrics-Signature": "v1=00"}, body)
