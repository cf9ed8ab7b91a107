"""The SDK's pure parts (producers/sdk-python): its own signature equals the gateway's, packing keeps every
event within the gateway's limits and in order, answers map to results, retries or exceptions, and the
backoff honours Retry-After."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timezone
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from livemetrics_sdk import GatewayError, KeyRefused, build
from livemetrics_sdk.events import MAX_BATCH, MAX_BODY_BYTES
from livemetrics_sdk.signing import auth_headers, parse_key, sign
from livemetrics_sdk.wire import MAX_BACKOFF_S, encode_event, outcome, pack, parse_retry_after, retry_delay

from livemetrics import keys

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1),
    ts=st.floats(1e9, 4e9).map(lambda t: f"{t:.3f}"),
    body=st.binary(max_size=300),
    backfill=st.booleans(),
)
def test_the_sdks_signature_is_the_gateways(secret, ts, body, backfill):
    assert sign(secret, ts, body, backfill) == keys.sign(secret, ts, body, backfill)


def test_keys_and_their_headers():
    sk = parse_key("lm_sk_abc123_s3cr_et")  # a secret may hold underscores
    assert (sk.kind, sk.key_id, sk.secret) == ("sk", "abc123", "s3cr_et")
    h = auth_headers(sk, b"{}", True)
    assert h["X-Livemetrics-Key-Id"] == "abc123" and "s3cr_et" not in json.dumps(h)
    assert h["X-Livemetrics-Signature"] == keys.sign("s3cr_et", h["X-Livemetrics-Timestamp"], b"{}", True)
    assert auth_headers(parse_key("lm_pk_id_pub"), b"{}", False) == {"Authorization": "Bearer lm_pk_id_pub"}
    for bad, says in [("nope", "looks like lm_sk_"), ("lm_st_id_x", "cannot send events"), ("lm_sk_id_", "looks like")]:
        with pytest.raises(ValueError, match=says):
            parse_key(bad)


@hsettings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 40_000), max_size=700))
def test_packing_keeps_order_and_the_gateways_limits(sizes):
    events = [{"type": "heartbeat", "session_id": "s" * 8, "pad": "x" * n} for n in sizes]
    batches, refused = pack(events)
    assert refused == []
    assert [i for b in batches for i in b.indexes] == list(range(len(events)))
    for b in batches:
        body = json.loads(b.body)
        assert len(b.body) <= MAX_BODY_BYTES and 1 <= len(body["events"]) <= MAX_BATCH
        assert body["events"] == [events[i] for i in b.indexes]
    # as few requests as the limits allow, near enough: each next batch could not have taken one more event
    for b, nxt in zip(batches, batches[1:]):
        assert (
            len(b.indexes) == MAX_BATCH or len(b.body) + len(encode_event(events[nxt.indexes[0]])) + 1 > MAX_BODY_BYTES
        )


def test_unsendable_events_are_refused_alone_with_the_reason():
    ok = build.page_view("sess-0001", {"type": "home"})
    huge = {"type": "heartbeat", "pad": "x" * MAX_BODY_BYTES}
    batches, refused = pack(
        [
            {"amount": float("nan")},
            ok,
            datetime.now(),
            huge,
            {"ts": datetime(2026, 1, 1)},
            {"amount": Decimal("1E+3"), "id": uuid.UUID(int=1)},
        ]
    )
    assert [b.indexes for b in batches] == [[1, 5]]
    assert json.loads(batches[0].body)["events"][1] == {"amount": "1000", "id": str(uuid.UUID(int=1))}
    assert [r["index"] for r in refused] == [0, 2, 3, 4]
    assert "not sendable as JSON" in refused[0]["error"] and "a dict, not a datetime" in refused[1]["error"]
    assert f"over the gateway's limit of {MAX_BODY_BYTES} bytes" in refused[2]["error"]
    assert "needs a time zone" in refused[3]["error"]
    aware = json.loads(encode_event({"ts": datetime(2026, 1, 1, tzinfo=UTC)}))
    assert aware == {"ts": "2026-01-01T00:00:00Z"}


def answer(status: int, body=None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_answers():
    assert outcome(answer(202, {"accepted": 2, "rejected": [{"index": 1, "error": "bad"}]}), 3).accepted == 2
    assert outcome(
        answer(422, {"accepted": 0, "rejected": [{"index": 0, "error": "e0"}], "error": "e0"}), 1
    ).rejected == [{"index": 0, "error": "e0"}]
    assert outcome(answer(413, {"error": "body over the limit"}), 2).rejected == [
        {"index": 0, "error": "body over the limit"},
        {"index": 1, "error": "body over the limit"},
    ]
    for status in (429, 500, 502, 503, 504):
        assert outcome(answer(status, {"error": "later"}), 1) is None
    with pytest.raises(KeyRefused, match="answered 401: wrong signature") as e:
        outcome(answer(401, {"error": "wrong signature"}), 1)
    assert (e.value.status, e.value.error) == (401, "wrong signature")
    with pytest.raises(KeyRefused, match="403: origin"):
        outcome(answer(403, {"error": "origin 'x' is not allowed"}), 1)
    with pytest.raises(GatewayError, match="404: Not Found"):
        outcome(httpx.Response(404, text=""), 1)
    with pytest.raises(GatewayError, match="not a livemetrics gateway's answer"):
        outcome(httpx.Response(200, text="<html>"), 1)


@given(attempt=st.integers(0, 30), after=st.none() | st.floats(0, 3600), r=st.floats(0, 1))
def test_backoff_grows_with_jitter_and_never_comes_before_retry_after(attempt, after, r):
    d = retry_delay(attempt, after, rnd=lambda: r)
    base = min(MAX_BACKOFF_S, 0.1 * 2**attempt)
    assert base / 2 <= d or (after is not None and d >= after)
    if after is None:
        assert d <= base
    else:
        assert after <= d <= max(base, after * 1.1) + 1e-9


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("2") == 2.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    when = datetime(2030, 1, 1, tzinfo=UTC)
    assert math.isclose(parse_retry_after(format_datetime(when, usegmt=True), now=lambda: when.timestamp() - 7), 7)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=lambda: when.timestamp() + 9) == 0


def test_builders_fill_ids_once_and_leave_out_nones():
    ev = build.payment(
        "payment_failed",
        "sess-0001",
        method="card",
        amount=Decimal("9.90"),
        currency="EUR",
        order_id="o-1",
        error_code="card_declined",
        details=None,
    )
    assert uuid.UUID(ev["event_id"]) and isinstance(ev["ts"], int)
    assert ev["payment"] == {
        "method": "card",
        "amount": Decimal("9.90"),
        "currency": "EUR",
        "order_id": "o-1",
        "error_code": "card_declined",
    }
    assert "customer" not in ev


def test_a_client_refuses_bad_options_at_once():
    from livemetrics_sdk import Client

    with pytest.raises(ValueError, match="backfill needs a server key"):
        Client("http://gw", "lm_pk_id_pub", backfill=True)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        Client("http://gw", "lm_sk_id_secret", timeout=0)
    with pytest.raises(ValueError, match="looks like lm_sk_"):
        Client("http://gw", "sk_live_123")
    lm = Client("http://gw", "lm_pk_id_pub")
    with pytest.raises(ValueError, match="backfill needs a server key"):
        lm.send([], backfill=True)
    with pytest.raises(ValueError, match="an event is a dict, not a str"):
        lm.add("page_view")
    assert lm.send([]).attempts == 0  # nothing to send: no request
