"""The benchmarks' Arrow table of raw events (operations/bench/events_arrow.py, decoded with the sink's
lax ``SinkEvent``) agrees with the contract: same columns, same values as the contract's own getters,
for any event the contract accepts. The strategies here are shared with the sink's integration tests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, timezone

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from clickhouse.columns import KAFKA_COLUMNS
from livemetrics.contract import COLUMNS, MONEY_MAX, MONEY_SCALE, Checkout, Customer, Event, Item, Page, Payment, encode
from operations.bench.events_arrow import EVENT_SCHEMA, decode_events, events_table

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
opt = lambda s: st.none() | s  # noqa: E731
pages = st.builds(
    Page,
    type=st.sampled_from(["home", "category", "offer", "product"]),
    category=opt(text),
    offer_id=opt(text),
    path=opt(text),
)
money = st.decimals(0, MONEY_MAX, places=MONEY_SCALE, allow_nan=False, allow_infinity=False)
items = st.lists(st.builds(Item, sku=text, name=text, qty=st.integers(1, 9), unit_price=money), max_size=3)
checkouts = st.builds(Checkout, items=items, total=money, currency=st.just("EUR"))
payments = st.builds(
    Payment,
    method=st.just("card"),
    amount=money,
    currency=st.just("USD"),
    order_id=text,
    error_code=opt(text),
    error_message=opt(text),
    details=opt(st.dictionaries(text, st.integers() | text, max_size=3)),
    items=opt(items),
)
events = st.builds(
    Event,
    event_id=st.uuids().map(str),
    type=st.sampled_from(["page_view", "checkout_started", "payment_failed"]),
    seller_id=text,
    session_id=text,
    ts=st.integers(946_684_800_000, 4_102_444_800_000),
    received_at=st.integers(946_684_800_000, 4_102_444_800_000),
    page=opt(pages),
    checkout=opt(checkouts),
    payment=opt(payments),
    customer=opt(st.builds(Customer, email=opt(text), phone=opt(text), name=opt(text))),
    ip=opt(text),
    ip_hash=opt(text),
    user_agent=opt(text),
    browser=opt(text),
    os=opt(text),
    device=opt(text),
    is_bot=st.booleans(),
    backfill=st.booleans(),
)


def test_the_schema_is_the_contract_columns_plus_the_kafka_position():
    assert EVENT_SCHEMA.names == [c[0] for c in COLUMNS] + list(KAFKA_COLUMNS)


def _same(name, got, want):
    if isinstance(want, uuid.UUID):
        return got == str(want)
    if hasattr(want, "tzinfo"):
        return got.astimezone(UTC) == want
    if name in ("items", "error_details") and want:  # raw JSON passed through vs re-encoded: same value
        return json.loads(got) == json.loads(want)
    return got == want


@settings(max_examples=60, deadline=None)
@given(st.lists(events, min_size=1, max_size=5))
def test_columns_equal_the_contract_getters(evs):
    decoded, bad = decode_events([encode(e) for e in evs])
    assert bad == []
    table = events_table(decoded, ["t"] * len(evs), [1] * len(evs), list(range(len(evs)))).to_pylist()
    for row, e in zip(table, evs):
        for name, _, get in COLUMNS:
            assert _same(name, row[name], get(e)), (name, row[name], get(e))


def test_undecodable_messages_are_reported_not_fatal():
    good = encode(
        Event(event_id=str(uuid.uuid4()), type="heartbeat", seller_id="s", session_id="sess-0001", ts=1, received_at=1)
    )
    decoded, bad = decode_events([good, b"{not json", good])
    assert len(decoded) == 2 and bad == [1]
    assert isinstance(msgspec.json.decode(good), dict)
