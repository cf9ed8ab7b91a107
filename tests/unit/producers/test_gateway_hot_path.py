"""The gateway's fast paths give exactly what the straightforward code gives.

The straightforward versions live here as references: the per-position `re` card scan and the
field-by-field construction of each ``Event``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import card_bytes
from livemetrics import card_data as c
from livemetrics import validation as v
from livemetrics.contract import Event, EventIn, encode, epoch_ms
from livemetrics.settings import Settings
from producers.gateway.enrich import ip_hash, user_agent_info
from producers.gateway.ingest import PROCESS_SALTS, ClientInfo, ingest, parse_body
from tests.support import factories as f


def reference_scan(raw: bytes) -> bool:
    """The byte pre-scan without its RE2 gate: the card rules on the event's text (``card_in_raw_text``);
    plus: `"ts"` twice (with no NUL between, as in a joined batch) sends the event to the walk, which
    trusts only the top-level one, and so do escapes and CVC keys."""
    if b"\\u" in raw or card_bytes._CVC_BYTES.search(raw):
        return True
    if any(part.count(b'"ts"') > 1 for part in raw.split(b"\x00")):
        return True
    return card_bytes.card_in_raw_text(card_bytes.event_text(raw))


_OWN_EVENT_ID = re.compile(
    rb'"event_id" ?: ?("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")'
)


def reference_scan_of_event(raw: bytes) -> bool:
    """``reference_scan`` of one event, whose own `event_id` (its one `"event_id"` key, a canonical UUID)
    is never card data: its hex digits are blanked out first."""
    m = _OWN_EVENT_ID.search(raw) if raw.count(b'"event_id"') == 1 else None
    if m is not None:
        raw = raw[: m.start(1) + 1] + b"x" * 36 + raw[m.end(1) - 1 :]
    return reference_scan(raw)


# Pieces that sit on the edges of the rules: the `ts` look-behinds, separators, digit runs of every
# length, CVC keys in any case, escapes, bytes that are not UTF-8, `event_id` keys and UUIDs holding
# digit runs (one a card number).
TOKENS = [
    b'"ts":',
    b'"ts": ',
    b'"ts"',
    b'ts":',
    b's": ',
    b" ",
    b"-",
    b"  ",
    b"--",
    b"1",
    b"0",
    b"9",
    b"4111",
    b"1111",
    b"4111111111111111",
    b"4111 1111 1111 1111",
    b"4111-1111-1111-1111",
    b"12345678901234567890",
    b"1795503867234",
    b'"',
    b"x",
    b":",
    b",",
    b"{",
    b"}",
    b"[",
    b"\n",
    b"\xff",
    b"\xc3\xa9",
    b'"cvv"',
    b'"CVC2"',
    b'"card_code"',
    b'"Security Code"',
    b'"cardverificationvalue"',
    b"\\u",
    b"\\",
    b'"event_id"',
    b'"event_id": ',
    b'"event_id":',
    b'"41111111-1111-1111-1111-111111111111"',
    b'"a1234567-8901-2345-6789-0123456789ab"',
    b'"12345678-1234-4234-8234-1234567890ab"',
    # numbers in every JSON spelling, glue and boundaries, groups of card and of other sizes
    b"e",
    b"E",
    b"e+",
    b"e-",
    b"15",
    b".",
    b"+",
    b"_",
    b"a",
    b"4.111111111111111",
    b"411111",
    b"4111111",
    b"-4111111111111111",
    b"4111111111111111.0",
    b"4111 111111 11111",
    b"4111 1111 1111 1111 111",
    b"378282246310005",
    b"6759649826438453",
    b'"4.111111111111111e15"',
    b'"+4111111111111111"',
    b"[",
    b",",
    b"\t",
    b"\\n",
    b"\\t",
    b"\\\\n",
    # the plain spelling (card_spellings.plain_digits): other digits, spaces and dashes, raw and URL-escaped
    b"4111+1111+1111+1111",
    b"%20",
    b"%2",
    b"%3",
    b"%2D",
    b"%2b",
    b"%34",
    b"%C3%A9",
    b"\xef\xbc\x94",  # fullwidth 4
    b"\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91",  # fullwidth 1111
    b"%EF%BC%94",
    b"%ef%bc%91",
    b"\xd9\xa4\xd9\xa1\xd9\xa1\xd9\xa1",  # Arabic-Indic 4111
    b"\xc2\xa0",  # no-break space
    b"%C2%A0",
    b"\xe2\x80\x93",  # en dash
    b"\xe3\x83\xbc",  # katakana long mark
]


def joined(parts: list[bytes]) -> bytes:
    return b"".join(parts)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=24))
def test_the_re2_pre_scan_decides_exactly_like_the_re_scan(parts):
    raw = joined(parts)
    assert c.might_hold_card_data(raw) is reference_scan(raw)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_the_re2_pre_scan_on_arbitrary_bytes(raw):
    assert c.might_hold_card_data(raw) is reference_scan(raw)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TOKENS), max_size=10).map(joined), min_size=1, max_size=12))
def test_one_pass_over_a_batch_flags_exactly_the_events_a_scan_of_each_would(raws):
    flagged = c.events_to_card_check(raws)
    assert flagged == sorted(set(flagged))
    assert flagged == [i for i, raw in enumerate(raws) if c.events_to_card_check([raw]) == [0]]
    # what it skips is only the event's own UUID: every event the reference scan would stop is looked at
    assert {i for i, raw in enumerate(raws) if reference_scan_of_event(raw)} <= set(flagged)
    assert set(flagged) <= {i for i, raw in enumerate(raws) if card_bytes._SUSPECT.search(raw) is not None}


def test_epoch_ms_ts_is_skipped_but_a_card_after_it_is_not():
    assert c.events_to_card_check([b'{"ts": 1795503867234, "x": 1}', b'{"ts":1795503867234}']) == []
    assert c.events_to_card_check([b'{"ts": 1795503867234 4111111111111111}']) == [0]
    assert c.events_to_card_check([b'{"tx": 1795503867234}']) == [0]
    assert c.events_to_card_check([b"1", b'" 4111 1111 1111 1111"', b"2", b'{"cvv": 1}']) == [1, 3]
    assert c.might_hold_card_data(b'{"p": "4111 1111 1111 1111"}')


CLIENT = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME)
SETTINGS = Settings(topic_prefix="hot.")


def reference_event(ev: EventIn, client: ClientInfo, received_at: int, seq: int) -> bytes:
    """Every field spelt out, as the gateway built events before the template copy."""
    browser, os_, device, is_bot = user_agent_info(client.user_agent)
    return encode(
        Event(
            event_id=str(ev.event_id),
            type=ev.type,
            seller_id=client.seller_id,
            session_id=ev.session_id,
            ts=epoch_ms(ev.ts),
            received_at=received_at,
            seq=seq,
            page=ev.page,
            checkout=ev.checkout,
            payment=ev.payment,
            customer=ev.customer,
            ip=client.ip if ev.type == "payment_failed" else None,
            ip_hash=ip_hash(client.ip, PROCESS_SALTS, received_at),  # the salts ingest uses when given none
            user_agent=client.user_agent[:512],
            browser=browser,
            os=os_,
            device=device,
            is_bot=is_bot,
            backfill=client.backfill,
        )
    )


def test_records_are_byte_for_byte_what_the_field_by_field_build_gives():
    events = [
        f.page_view(),
        f.page_view("category", category="lamps"),
        f.heartbeat(),
        f.checkout_started(),
        f.payment(),
        f.payment_succeeded(),
        f.payment_failed(),
        f.page_view(ts=datetime.now(timezone(timedelta(hours=2))).isoformat()),
    ]  # RFC 3339, another zone
    for backfill in (False, True):
        client = ClientInfo(CLIENT.seller_id, CLIENT.ip, CLIENT.user_agent, backfill)
        result = ingest(json.dumps({"events": events}).encode(), client, SETTINGS)
        assert not result.rejected and len(result.records) == len(events)
        received_at = json.loads(result.records[0][2])["received_at"]
        for seq, ((topic, key, value), ev) in enumerate(zip(result.records, events)):
            parsed = v.parse_event(json.dumps(ev).encode(), 0)
            assert value == reference_event(parsed, client, received_at, seq)
            assert key == ev["session_id"].encode()
            assert topic == "hot." + {
                "page_view": "page-events",
                "heartbeat": "page-events",
                "checkout_started": "checkout-events",
            }.get(ev["type"], "payment-events")


# Text for string fields that a storefront controls: near misses of every rule the body scan has.
FIELD_TEXT = st.lists(
    st.sampled_from(
        [
            "ts",
            '"ts"',
            '"ts": ',
            "event_id",
            '"event_id": ',
            "cvv",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "1795503867234",
            "41111111-1111-1111-1111-111111111111",
            "a1234567-8901-2345-6789-0123456789ab",
            "1",
            "-",
            " ",
            ":",
            '"',
            "\\",
            "é",
            "x",
            "/p",
            "\\u0041",
        ]
    ),
    max_size=6,
).map("".join)
# Values for the fields whose patterns the clean path checks on the body instead of msgspec: each
# pattern's valid forms and near misses (escapes, Unicode spaces, a trailing newline that Python's `$`
# lets through, lengths at the limits), and UUIDs in every form msgspec accepts.
PATTERNED = {
    "category": ["shoes", "A.b:c-d_e", "a", "", "-a", "a b", "a/b", "é", "a\n", "a\\", 'a"', "a\u00a0", "a" * 101],
    "currency": ["EUR", "eur", "EURO", "EU", "EUR\n", "\u20acUR", "E1R", " EUR", "EUR "],
    "method": ["card", "card_2", "Card", "caRd", "2card", "ca-rd", "", "card\n", "c" * 41],
    "email": [
        "a@b",
        "ada@example.com",
        "a@b@c",
        "@b",
        "a@",
        "a b@c",
        "a\u00a0@b",
        "a\u001c@b",
        'a"@b',
        "a\\@b",
        "a@b\n",
        "é@b",
        "a@b\x7f",
    ],
    "phone": [
        "+4420794600",
        "+44 (20) 7946-0958.",
        "1234",
        "+123",
        "123",
        "++1234",
        "12a4",
        " 1234",
        "1" * 40,
        "+" + "1" * 39,
        "+" + "1" * 40,
        "1" * 41,
        "1234\n",
    ],
    "event_id": [
        "a1234567-8901-2345-6789-0123456789ab",
        "A1234567-8901-2345-6789-0123456789AB",
        "a12345678901234567890123456789ab",
        "a1234567-8901-2345-6789-0123456789a",
        "a1234567_8901-2345-6789-0123456789ab",
        "{a1234567-8901-2345-6789-0123456789ab}",
        "urn:uuid:a1234567-8901-2345-6789-0123456789ab",
    ],
}
DETAIL_KEYS = st.sampled_from(["ts", "event_id", "note", "cvv", "Ts", "currency", "email", "category"])
DETAIL_VALUES = st.one_of(
    FIELD_TEXT,
    st.sampled_from(
        [4111111111111111, 1795503867234, 41111111111111111111, "41111111-1111-1111-1111-111111111111", None, 5, "EUR"]
    ),
    st.sampled_from(PATTERNED["email"] + PATTERNED["event_id"]),
)
PLACES = ["path", "title", "details", "patterned"]


@st.composite
def batches(draw) -> bytes:
    events = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["page_view", "heartbeat", "payment_failed", "checkout_started"]))
        ev = {
            "payment_failed": f.payment_failed,
            "page_view": f.page_view,
            "heartbeat": f.heartbeat,
            "checkout_started": f.checkout_started,
        }[kind]()
        if draw(st.booleans()):
            ev["event_id"] = draw(
                st.sampled_from(
                    ["a1234567-8901-2345-6789-0123456789ab", "41111111-1111-1111-1111-111111111111", ev["event_id"]]
                )
            )
        for _ in range(draw(st.integers(0, 2))):
            where = draw(st.sampled_from(PLACES))
            if where == "patterned":
                key = draw(st.sampled_from(sorted(PATTERNED)))
                value = draw(st.sampled_from(PATTERNED[key]))
                holder = {
                    "category": ev.get("page"),
                    "event_id": ev,
                    "email": ev.get("customer"),
                    "phone": ev.get("customer"),
                    "method": ev.get("payment"),
                    "currency": ev.get("checkout") or ev.get("payment"),
                }[key]
                if holder is not None:
                    holder[key] = value
            elif where != "details" and "page" in ev:
                ev["page"][where] = draw(FIELD_TEXT)
            elif where == "details" and kind == "payment_failed":
                ev["payment"]["details"][draw(DETAIL_KEYS)] = draw(DETAIL_VALUES)
        events.append(ev)
    spacing = draw(st.sampled_from([(", ", ": "), (",", ":")]))
    return json.dumps({"events": events}, separators=spacing, ensure_ascii=draw(st.booleans())).encode()


@settings(max_examples=1500, deadline=None)
@given(batches())
def test_a_body_decoded_at_once_gives_exactly_what_the_exact_way_gives(body):
    exact = parse_body(body, v.split_body(body))
    clean = v.clean_batch(body)
    if any(isinstance(x, v.Rejection) for x in exact):
        assert clean is None
    if clean is not None:
        # The clean path's own types (no patterns, `event_id` as its string): the same values, encoded alike.
        assert [type(ev).__name__ for ev in clean] == ["CleanEventIn"] * len(exact)
        assert msgspec.json.encode(clean) == msgspec.json.encode(exact)
        strip = lambda rec: (rec[0], rec[1], {**json.loads(rec[2]), "received_at": 0})  # noqa: E731
        fast, slow = ingest(body, CLIENT, SETTINGS), ingest(body, CLIENT, SETTINGS, exact)
        assert [strip(r) for r in fast.records] == [strip(r) for r in slow.records] and not slow.rejected


def test_a_storefront_batch_takes_the_one_decode():
    events = [f.page_view(), f.heartbeat(), f.checkout_started(), f.payment_failed()] * 25
    for i, ev in enumerate(events[::7]):  # ids with a long digit run, as ~2 random UUIDs in 100 have
        ev["event_id"] = f"{i:08x}-1234-4567-8901-234567890abc"
    body = json.dumps({"events": [{**ev} for ev in events]}).encode()
    assert v.clean_batch(body) is not None and c.events_to_card_check(v.split_body(body)) == []
