"""Hypothesis strategies for ``POST /v1/events`` bodies: valid events, near-valid ones (one thing wrong, so
the gateway must reject exactly that event) and hostile ones (huge numbers, deep nesting, odd text,
card numbers in every spelling, wrong types, duplicates), plus bodies that are unusable as a whole.

Each event comes with what the gateway must do with it: ``ACCEPT``, ``REJECT``, or ``None`` when either
answer is fine (hostile values the contract takes or refuses; the test then checks consistency only).
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

ACCEPT, REJECT = "accept", "reject"
SESSIONS = [f"fuzz-sess-{i:04d}" for i in range(3000)]
CARDS = ["4111111111111111", "4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005", "6011111111111117"]
# At most 11 digits in a row, after a letter or `_`: never a card number.
_LOWER = "abcdefghijklmnopqrstuvwxyz"
SLUG = st.builds(str.__add__, st.sampled_from(_LOWER), st.text(_LOWER + "0123456789_", max_size=11))
# Letters, marks, spaces and punctuation of any script, never digits: a valid event must not carry a
# Luhn-valid digit run by chance (those are the card-number cases, generated on purpose below).
TEXT = st.text(st.characters(categories=["L", "M", "Zs", "P"], exclude_characters="\x00"), max_size=40)
MONEY = st.decimals(min_value=0, max_value=1_000_000, places=2, allow_nan=False, allow_infinity=False)


def _money(d) -> object:
    return str(d) if int(d * 100) % 2 else (int(d) if d == int(d) else float(d))  # a string or a number


@st.composite
def timestamps(draw):
    ms = int(time.time() * 1000) - draw(st.integers(0, 3_600_000))
    if draw(st.booleans()):
        return ms
    offset = timezone(timedelta(minutes=draw(st.sampled_from([0, 60, -300, 330]))))
    return datetime.fromtimestamp(ms / 1000, tz=offset).isoformat(timespec="milliseconds")


@st.composite
def pages(draw) -> dict:
    kind = draw(st.sampled_from(["home", "category", "offer", "product", "cart", "checkout", "payment", "other"]))
    page: dict = {"type": kind, "path": "/" + draw(SLUG)}
    if kind == "category":
        page["category"] = draw(SLUG)
    if kind == "offer":
        page["offer_id"] = draw(SLUG)
    if draw(st.booleans()):
        page["title"] = draw(TEXT)
    return page


@st.composite
def items(draw) -> list:
    return [
        {"sku": draw(SLUG), "name": draw(TEXT), "qty": draw(st.integers(1, 5)), "unit_price": _money(draw(MONEY))}
        for _ in range(draw(st.integers(1, 3)))
    ]


@st.composite
def valid_events(draw, seller: str) -> dict:
    t = draw(
        st.sampled_from(
            [
                "page_view",
                "page_view",
                "heartbeat",
                "checkout_started",
                "payment_started",
                "payment_succeeded",
                "payment_failed",
            ]
        )
    )
    ev: dict = {
        "event_id": str(draw(st.uuids())),
        "type": t,
        "session_id": draw(st.sampled_from(SESSIONS)),
        "ts": draw(timestamps()),
    }
    if t == "page_view" or (t == "heartbeat" and draw(st.booleans())):
        ev["page"] = draw(pages())
    if t == "checkout_started":
        ev["checkout"] = {"items": draw(items()), "total": _money(draw(MONEY)), "currency": "EUR"}
    if t.startswith("payment_"):
        pay = {
            "method": draw(st.sampled_from(["card", "paypal", "bank_transfer"])),
            "amount": _money(draw(MONEY)),
            "currency": draw(st.sampled_from(["EUR", "USD", "GBP"])),
            "order_id": "ord-" + draw(SLUG),
        }
        if t == "payment_failed":
            pay.update(error_code=draw(SLUG), error_message=draw(TEXT), details={"gateway": draw(SLUG)})
        ev["payment"] = pay
    if t != "page_view" and t != "heartbeat" and draw(st.booleans()):
        ev["customer"] = {"email": "ada@example.com", "name": draw(TEXT)}
    if draw(st.integers(0, 9)) == 0:
        ev["seller_id"] = seller
    return ev


def _set(path: list, value):
    def apply(ev: dict):
        node = ev
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                return None
            node = node[key]
        node[path[-1]] = value
        return ev

    return apply


def _drop(key: str):
    return lambda ev: (ev.pop(key), ev)[1] if key in ev else None


def _when(pred, mutate):
    return lambda ev: mutate(ev) if pred(ev) else None


_PAGE = lambda ev: isinstance(ev.get("page"), dict)  # noqa: E731
_PAY = lambda ev: isinstance(ev.get("payment"), dict)  # noqa: E731
_LIVE_ONLY = lambda ev: ev["type"] in ("page_view", "heartbeat")  # noqa: E731
_DAYS = 86_400_000
# One thing wrong each: the gateway must reject exactly that event (a `None` result: not applicable).
MUTATIONS = {
    "no event_id": _drop("event_id"),
    "event_id not a uuid": _set(["event_id"], "not-a-uuid"),
    "unknown type": _set(["type"], "page_vew"),
    "short session_id": _set(["session_id"], "short"),
    "session_id a number": _set(["session_id"], 12345678),
    "ts a boolean": _set(["ts"], True),
    "ts 3 days ahead": lambda ev: _set(["ts"], int(time.time() * 1000) + 3 * _DAYS)(ev),
    "ts 3 days back": lambda ev: _set(["ts"], int(time.time() * 1000) - 3 * _DAYS)(ev),
    "ts without zone": _set(["ts"], datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")),
    "unknown field": _set(["foo"], 1),
    "another seller": _set(["seller_id"], "someone-else"),
    "customer on a page event": _when(_LIVE_ONLY, _set(["customer"], {"email": "ada@example.com"})),
    "page_view without page": _when(lambda ev: ev["type"] == "page_view", _drop("page")),
    "category page without slug": _when(_PAGE, lambda ev: _set(["page"], {"type": "category"})(ev)),
    "bad slug": _when(_PAGE, lambda ev: _set(["page"], {"type": "offer", "offer_id": "-no slug-"})(ev)),
    "lowercase currency": _when(_PAY, _set(["payment", "currency"], "eur")),
    "negative amount": _when(_PAY, _set(["payment", "amount"], "-1.00")),
    "five decimals": _when(_PAY, _set(["payment", "amount"], 1.23456)),
    "amount over the limit": _when(_PAY, _set(["payment", "amount"], "1000000000001")),
    "failure without code": _when(lambda ev: ev["type"] == "payment_failed", _set(["payment", "error_code"], None)),
    "card number in a path": _when(_PAGE, lambda ev: _set(["page", "path"], "/pay/4111 1111 1111 1111")(ev)),
    "card number in details": _when(_PAY, _set(["payment", "details"], {"note": "5555-5555-5555-4444"})),
    "card number as a number": _when(_PAY, _set(["payment", "details"], {"n": 4111111111111111})),
    "card number as a key": _when(_PAY, _set(["payment", "details"], {"4111111111111111": "x"})),
    "security code": _when(_PAY, _set(["payment", "details"], {"cvv": "123"})),
}


@st.composite
def near_valid_events(draw, seller: str) -> dict:
    ev = draw(valid_events(seller))
    names = [n for n, m in MUTATIONS.items() if m(copy.deepcopy(ev)) is not None]
    return MUTATIONS[draw(st.sampled_from(names))](ev)


def _nest(depth: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(depth):
        node = {"n": node}
    return node


HOSTILE_VALUES = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -0.0, 5e-324]),
    st.text(max_size=60),
    st.builds(_nest, st.integers(1, 80)),
    st.lists(st.integers(), max_size=30),
    st.sampled_from(["\u202eevil", "\U0001f600" * 50, "a\u0000b", "\udbff\udfff", "é" * 3000, "x" * 40_000]),
)


@st.composite
def hostile_events(draw, seller: str) -> tuple[object, str | None]:
    kind = draw(st.sampled_from(["details value", "title", "not an object", "card anywhere"]))
    if kind == "not an object":
        return draw(
            st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=3))
        ), REJECT
    ev = draw(valid_events(seller))
    if kind == "card anywhere":
        card = draw(st.sampled_from(CARDS))
        spot = draw(st.sampled_from(["session_id", "title", "key", "number"]))
        if spot == "session_id":
            ev["session_id"] = card
        elif spot == "title":
            ev["page"] = {"type": "home", "title": f"card {card} declined"}
            if ev["type"] not in ("page_view", "heartbeat"):
                ev["type"] = "page_view"
                for part in ("checkout", "payment", "customer"):
                    ev.pop(part, None)
        else:
            ev["type"], ev["payment"] = (
                "payment_failed",
                {
                    "method": "card",
                    "amount": "1.00",
                    "currency": "EUR",
                    "order_id": "o-1",
                    "error_code": "declined",
                    "details": {card: 1} if spot == "key" else {"pan": int(card.replace(" ", "").replace("-", ""))},
                },
            )
            ev.pop("checkout", None)
        return ev, REJECT
    if kind == "details value":
        ev["type"] = "payment_failed"
        ev.pop("checkout", None)
        ev["payment"] = {
            "method": "card",
            "amount": 0,
            "currency": "EUR",
            "order_id": "o-2",
            "error_code": "x",
            "details": {"v": draw(HOSTILE_VALUES)},
        }
        return ev, None
    ev["type"], ev["page"] = "page_view", {"type": "home", "title": draw(HOSTILE_VALUES)}
    for part in ("checkout", "payment", "customer"):
        ev.pop(part, None)
    return ev, None


@st.composite
def events(draw, seller: str) -> tuple[object, str | None]:
    kind = draw(st.sampled_from(["valid", "valid", "near", "hostile"]))
    if kind == "valid":
        return draw(valid_events(seller)), ACCEPT
    if kind == "near":
        return draw(near_valid_events(seller)), REJECT
    return draw(hostile_events(seller))


def _encode(value, ascii_only: bool) -> bytes:
    """JSON as UTF-8; a lone surrogate (not UTF-8 at all) only ever as a ``\\ud800`` escape."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def bodies(draw, seller: str) -> tuple[bytes, list[tuple[object, str | None]]]:
    """A body and its events with their expected outcome; no events: the body is unusable as a whole."""
    if draw(st.integers(0, 14)) == 0:
        return draw(st.sampled_from(BROKEN_BODIES)), []
    evs = draw(st.lists(events(seller), min_size=1, max_size=8))
    if len(evs) > 1 and draw(st.integers(0, 5)) == 0:  # the same event twice: both accepted, as sent
        evs.append(evs[0])
    ascii_only = draw(st.booleans())
    if len(evs) == 1 and isinstance(evs[0][0], dict) and draw(st.booleans()):
        return _encode(evs[0][0], ascii_only), evs
    return _encode({"events": [e for e, _ in evs]}, ascii_only), evs


BROKEN_BODIES = [
    b"",
    b"   ",
    b"{",
    b"[]",
    b"null",
    b"42",
    b'"x"',
    b'{"events": []}',
    b'{"events": 5}',
    b'{"events": null, "x": 1}',
    b"\xef\xbb\xbf{}",
    b'{"event_id": "\xff\xfe"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"events": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
    b'{"a": 1e999999}',
    b'{"events": [' + b",".join([b"{}"] * 501) + b"]}",
    b'{"x": "' + b"a" * (1024 * 1024) + b'"}',
    '{"ts": "\u00e9"}'.encode("utf-16"),
    # A lone surrogate escape (no text): its event is refused by name (livemetrics/validation.py), none accepted.
    b'{"events": [{"type": "page_view", "title": "\\ud800"}]}',
    b'{"events": [{"type": "page_view", "n": NaN}]}',
    b'{"events": [{"type": "page_view", "n": -Infinity}]}',
]
