"""Card data under keys the byte scan treats specially, and the batch fast paths against the per-event one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import msgspec

from livemetrics.card_data import events_to_card_check
from livemetrics.contract import decode
from livemetrics.settings import Settings
from livemetrics.validation import Rejection, clean_batch, parse_event, split_body
from producers.gateway.ingest import ClientInfo, dead_letter, ingest, parse_body
from tests.support import factories as f

CARD = 4111111111111111  # Luhn-valid
SETTINGS = Settings(topic_prefix="scan.")
CLIENT = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME)


def _leaves(result) -> str:
    return " ".join(
        [v.decode() for _, _, v in result.records] + [dead_letter(r, CLIENT, 0).decode() for r in result.rejected]
    )


def test_a_card_number_under_a_nested_ts_key_is_card_data():
    for details in ({"ts": CARD}, {"ts": str(CARD)}, {"x": [{"ts": CARD}]}, {"ts": 1795503867234, "y": {"ts": CARD}}):
        ev = f.payment_failed()
        ev["payment"]["details"] = details
        for raw in (json.dumps(ev).encode(), json.dumps(ev, separators=(",", ":")).encode()):
            r = parse_event(raw, 0)
            assert isinstance(r, Rejection) and r.reason == "card_data", (details, r)
            assert "$.payment.details" in r.error
            result = ingest(json.dumps({"events": [f.page_view(), ev, f.page_view()]}).encode(), CLIENT, SETTINGS)
            assert [x.index for x in result.rejected] == [1] and result.rejected[0].reason == "card_data"
            assert str(CARD) not in _leaves(result)


def test_only_the_top_level_epoch_ms_ts_is_trusted():
    ev = f.page_view(ts=CARD)  # out of the epoch-ms range: not a timestamp, so it is scanned
    result = ingest(json.dumps({"events": [ev]}).encode(), CLIENT, SETTINGS)
    assert not result.records and str(CARD) not in _leaves(result)
    ok = f.page_view(ts=1795503867234)  # a real epoch-ms ts that happens to pass Luhn (received the same day)
    assert not ingest(json.dumps(ok).encode(), CLIENT, SETTINGS, received_at=1795503867234 + 3_600_000).rejected


def test_a_card_number_as_a_rejected_event_id_never_reaches_the_dead_letters():
    ev = f.page_view(event_id=str(CARD))
    result = ingest(json.dumps({"events": [ev, f.page_view()]}).encode(), CLIENT, SETTINGS)
    assert [r.index for r in result.rejected] == [0]
    assert str(CARD) not in _leaves(result)


def test_a_batch_decoded_at_once_gives_what_event_by_event_gives():
    events = [
        f.page_view(),
        f.heartbeat(),
        f.checkout_started(),
        f.payment(),
        f.payment_failed(),
        f.payment_succeeded(),
        f.page_view("category", category="lamps"),
        f.page_view(ts=datetime.now(timezone(timedelta(hours=2))).isoformat()),
    ]
    clean = ingest(json.dumps({"events": events}).encode(), CLIENT, SETTINGS)
    assert not clean.rejected and len(clean.records) == len(events)
    one_by_one = [ingest(json.dumps(ev).encode(), CLIENT, SETTINGS).records[0] for ev in events]
    # received_at is the clock of each request; seq the event's position in its own request
    strip = lambda rec: (rec[0], rec[1], {**json.loads(rec[2]), "received_at": 0, "seq": 0})  # noqa: E731
    assert [strip(r) for r in clean.records] == [strip(r) for r in one_by_one]
    assert [decode(r[2]).seq for r in clean.records] == list(range(len(events)))


def test_one_bad_event_in_a_batch_is_named_by_its_own_path_and_index():
    events = [f.page_view() for _ in range(50)]
    events[7] = f.page_view(type="teleport")
    events[30] = f.page_view("category")  # no category
    result = ingest(json.dumps({"events": events}).encode(), CLIENT, SETTINGS)
    assert [(r.index, r.error) for r in result.rejected] == [
        (7, "unknown event type 'teleport' - at `$.type`"),
        (30, "category pages need `page.category` - at `$.page.category`"),
    ]
    assert len(result.records) == 48
    assert {decode(v).event_id for _, _, v in result.records} == {
        e["event_id"] for i, e in enumerate(events) if i not in (7, 30)
    }


# A UUID holding a run of 13+ decimal digits, dashes between (about 2 random UUIDs in 100), and one made of
# the digits of a card number (4111111111111111, Luhn-valid): neither is card data anywhere (a window of
# several digit groups is a card number only with groups of 1-6 digits; a UUID's are 8-4-4-4-12), while
# the same digits spelt as a card is printed are, also next to the event's own UUID.
DIGIT_RUN_UUID = "a1234567-8901-2345-6789-0123456789ab"
CARD_UUID = "41111111-1111-1111-1111-111111111111"
CARD_DASHED = "4111-1111-1111-1111"


def test_uuids_are_not_card_data_but_the_same_digits_as_a_card_are():
    for spacing in ((", ", ": "), (",", ":")):
        own = json.dumps(f.page_view(event_id=DIGIT_RUN_UUID), separators=spacing).encode()
        assert events_to_card_check([own]) == []
        assert events_to_card_check([json.dumps(f.page_view(event_id=CARD_UUID), separators=spacing).encode()]) == []
        for uuid_value in (CARD_UUID, DIGIT_RUN_UUID, CARD_UUID.replace("-", "")[:31] + "a"):
            ev = f.payment_failed(event_id=CARD_UUID, session_id=uuid_value, payment_overrides={"order_id": uuid_value})
            ev["payment"]["details"] = {"event_id": uuid_value, "id": uuid_value}
            raw = json.dumps(ev, separators=spacing).encode()
            assert events_to_card_check([raw]) == [] and not isinstance(parse_event(raw, 0), Rejection)
        for details in ({"event_id": CARD_DASHED}, {"id": CARD_DASHED}, {"x": {"event_id": CARD_DASHED}}):
            ev = f.payment_failed(event_id=DIGIT_RUN_UUID)
            ev["payment"]["details"] = details
            raw = json.dumps(ev, separators=spacing).encode()
            assert events_to_card_check([own, raw, own]) == [1]
            r = parse_event(raw, 0)
            assert isinstance(r, Rejection) and r.reason == "card_data" and "$.payment.details" in r.error
            result = ingest(json.dumps({"events": [f.page_view(), ev]}, separators=spacing).encode(), CLIENT, SETTINGS)
            assert [(x.index, x.reason) for x in result.rejected] == [(1, "card_data")]
            assert "4111111111111111" not in _leaves(result).replace("-", "")
    # digits after the UUID, in the same event, are still found
    tail = (
        json.dumps(f.page_view(event_id=DIGIT_RUN_UUID))
        .encode()
        .replace(b'", "type"', b'", "x": 4111111111111111, "type"')
    )
    assert events_to_card_check([tail]) == [0]
    for after in (b":", b" ", b": ", b"", b'"'):  # however little room the bytes after the UUID leave
        raw = b'{"event_id": "' + DIGIT_RUN_UUID.encode() + b'"' + after + b"4111111111111111}"
        assert events_to_card_check([raw]) == [0] and events_to_card_check([b"{}", raw]) == [1], after
    # a second `"event_id"` anywhere (here as a value) and no UUID is skipped
    twice = json.dumps(
        f.page_view(event_id=DIGIT_RUN_UUID, page={"type": "home", "title": "event_id " + CARD_DASHED})
    ).encode()
    assert events_to_card_check([twice]) == [0]


def test_a_clean_body_is_decoded_at_once_and_anything_else_the_exact_way():
    events = [
        f.page_view(event_id=DIGIT_RUN_UUID),
        f.heartbeat(),
        f.checkout_started(),
        f.payment_failed(),
        f.page_view("offer", offer_id="summer-sale"),
        f.page_view(ts="2026-01-01T10:00:00+02:00"),
    ]
    body = json.dumps({"events": events}).encode()
    clean = clean_batch(body)
    # the clean path's own types (no patterns, `event_id` as its string), with the same values
    assert clean is not None and msgspec.json.encode(clean) == msgspec.json.encode(parse_body(body, split_body(body)))
    not_clean = [
        {"events": events + [f.page_view(page={"type": "home", "path": "/pay?n=4111111111111111"})]},  # card
        {"events": events + [f.page_view("category")]},  # a rule (no category)
        {"events": events + [f.page_view(type="teleport")]},  # schema
        {"events": events, "ts": 1},  # a third `"ts"`...
        {"events": events + [f.page_view(page={"type": "home", "title": "ts"})]},  # ...even as a value
        {
            "events": [f.payment_failed(payment_overrides={"details": {"event_id": DIGIT_RUN_UUID.upper()}})]
        },  # two `"event_id"`
        {"events": [f.page_view(page={"type": "home", "title": "café"})]},  # an escape
        {"events": [f.payment_failed(payment_overrides={"details": {"log": "x" * 40_000}})]},  # over the event limit
        {"events": []},
        events[0],
        [events[0]],
        # what a per-field pattern refuses, or an `event_id` in another form than the canonical string
        {"events": events + [f.page_view("offer", offer_id="summer sale")]},
        {"events": events + [f.checkout_started(checkout={"items": [], "total": 1.0, "currency": "eur"})]},
        {"events": events + [f.heartbeat(event_id=DIGIT_RUN_UUID.upper())]},
    ]
    for payload in not_clean:
        assert clean_batch(json.dumps(payload).encode()) is None, payload
    big = ingest(json.dumps(not_clean[7]).encode(), CLIENT, SETTINGS)
    assert [r.reason for r in big.rejected] == ["oversize"] and not big.records


def test_a_rejected_events_ts_is_redacted_when_it_could_be_a_card_number():
    """An epoch-ms `ts` is never card data in an accepted event, but the contract's range reaches 14-digit
    values with Diners Club's prefix (years 2920-2938): rejected for its clock, its dead-letter copy
    trusts nothing."""
    diners = 30569309025904  # Diners Club's published test number, in the epoch-ms range
    result = ingest(json.dumps({"events": [f.page_view(ts=diners), f.page_view()]}).encode(), CLIENT, SETTINGS)
    assert [r.index for r in result.rejected] == [0] and len(result.records) == 1
    assert str(diners) not in _leaves(result)
    assert json.loads(dead_letter(result.rejected[0], CLIENT, 0))["event"]["ts"] == "[redacted card number]"
