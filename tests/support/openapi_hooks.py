"""Schemathesis hooks (loaded with ``SCHEMATHESIS_HOOKS=tests.support.openapi_hooks``) for the two
rules of ``POST /v1/events`` that depend on the caller and the clock, which no JSON schema can state
(both are in the OpenAPI's descriptions):

- a live event's `ts` must be within ``max_clock_skew_s`` of the gateway's clock;
- `seller_id`, when given, must be the key's own seller (also in `POST /v1/ws-tickets` on the API).

And `payment.details`' limits below its own level (nested keys, depth, entries in all, size), which a
schema cannot state either: a positive case's details over one of them is sent as null.

And the identifiers' rule (`session_id`, `payment.order_id`, `payment.error_code`, an item's `sku`: no
invisible format character, Unicode Cf, nor control character, Cc, in the descriptions): a positive case's
Cf or Cc character becomes "x".

And two spellings JSON Schema cannot tell apart from the values they stand for, so a generator may
pick them: an integer written with a fraction (``22788.0``: JSON Schema's ``integer`` takes it, the
contract wants ``22788``), and a multiple of 0.0001 carrying binary noise (``3 * 0.0001`` is written
``0.00030000000000000003``, not a multiple of 0.0001 once read as the decimal it is).

The read API's report and payment-error ranges have their own such rule: `from` before `to` (or before
now when `to` is left out), and a report's range at most ``report_max_days`` (400) long; and a `cursor` is
valid only when the API handed it out (schema-valid cases never carry a made-up one: the filter drops them).

With ``LIVEMETRICS_TEST_OPENAPI_SERVER_KEY`` set (a server key, ``lm_sk_...``), every request to
``POST /v1/events`` is signed as the server SDK signs (``livemetrics_sdk.signing.sign``): a requests auth
computes the HMAC over the body bytes as sent, the `X-Livemetrics-Backfill` header's flag included, with
a timestamp of its own for each request (the gateway refuses a replayed signature). Schemathesis counts
it as explicit auth: its `ignored_auth` check still sends each operation once unsigned and expects 401.
Without it, a run never passed the signed route's 401.

Only schema-valid (positive) cases are changed: their `ts` becomes the current time (in the spelling
the generator picked), their `seller_id` the key's seller (``LIVEMETRICS_TEST_OPENAPI_SELLER``), their
integral floats integers and their float amounts rounded to 4 places. Negative cases are sent as
generated.
"""

from __future__ import annotations

import os
import time
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import requests
import schemathesis
from livemetrics_sdk.signing import parse_key, sign

from livemetrics.details_limits import details_error

REPORT_MAX_DAYS = 400  # the setting's default (the test's API runs with it)


def _now_like(ts):
    ms = int(time.time() * 1000)
    if isinstance(ts, str):
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return ms


_MONEY = frozenset({"amount", "total", "unit_price"})


def _spelling(node, key=None):
    if isinstance(node, float):
        if node.is_integer() and abs(node) < 2**53:
            return int(node)
        return round(node, 4) if key in _MONEY else node
    if isinstance(node, dict):
        return {k: _spelling(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_spelling(v, key) for v in node]
    return node


def _visible(value):
    if not isinstance(value, str) or (value.isascii() and value.isprintable()):
        return value
    return "".join("x" if unicodedata.category(c) in ("Cf", "Cc") else c for c in value)


def _identifiers(event: dict) -> None:
    """``contract.IDENTIFIER_RULE`` on a positive case: its Cf and Cc characters replaced (the length kept)."""
    if "session_id" in event:
        event["session_id"] = _visible(event["session_id"])
    payment = event.get("payment")
    if isinstance(payment, dict):
        for k in ("order_id", "error_code"):
            if k in payment:
                payment[k] = _visible(payment[k])
    for part in (event.get("checkout"), payment):
        items = part.get("items") if isinstance(part, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "sku" in item:
                item["sku"] = _visible(item["sku"])


def _fix(event, seller: str) -> None:
    if not isinstance(event, dict):
        return
    event.update(_spelling(event))
    _identifiers(event)
    payment = event.get("payment")
    if isinstance(payment, dict) and isinstance(payment.get("details"), dict) and details_error(payment["details"]):
        payment["details"] = None  # over a limit of its nested levels, depth or size (the description's)
    if "ts" in event:
        event["ts"] = _now_like(event["ts"])
    if isinstance(event.get("seller_id"), str):
        event["seller_id"] = seller


def _fix_case(case) -> None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    seller = os.environ["LIVEMETRICS_TEST_OPENAPI_SELLER"]
    if case.path == "/v1/ws-tickets":  # a ticket for the token's own seller (another one's is a 404)
        if isinstance(case.body, dict) and "seller_id" in case.body:
            case.body["seller_id"] = seller
        return
    if case.path.endswith("/notifications/webhooks"):  # a public https URL: the SSRF rule (docs/notifications.md)
        if isinstance(case.body, dict) and "url" in case.body:  # depends on the host, which no schema states
            case.body["url"] = "https://hooks.example.com/livemetrics"
        return
    if case.path != "/v1/events":
        return
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        for event in body["events"]:
            _fix(event, seller)
    else:
        _fix(body, seller)


def _instant(v: str) -> datetime:
    d = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _order_range(case) -> None:
    query = case.query
    meta = case.meta
    if not isinstance(query, dict) or meta is None or not meta.generation.mode.is_positive:
        return
    if not isinstance(query.get("from"), str) or not query["from"]:  # "" is the default, as for the API
        return
    to = query.get("to")
    end = _instant(to) if isinstance(to, str) and to else datetime.now(UTC)
    start = _instant(query["from"])
    if start >= end or ("/reports/" in case.path and end - start > timedelta(days=REPORT_MAX_DAYS)):
        query["from"] = (end - timedelta(days=7)).isoformat()


@schemathesis.hook
def filter_case(context, case) -> bool:
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    return not (positive and isinstance(case.query, dict) and case.query.get("cursor"))


@schemathesis.hook
def map_case(context, case):
    """Coverage, fuzzing and stateful cases."""
    _fix_case(case)
    _order_range(case)
    return case


@schemathesis.hook
def before_add_examples(context, examples) -> None:
    """The examples phase's cases (no ``map_case`` there)."""
    for case in examples:
        _fix_case(case)


class ServerKeySignature(requests.auth.AuthBase):
    """The server SDK's signature headers over the prepared request's body (the bytes the gateway reads)."""

    def __init__(self, presented: str):
        self.key = parse_key(presented)
        self.last = 0.0

    def __call__(self, r):
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        backfill = str(r.headers.get("X-Livemetrics-Backfill", "")).strip().lower() in ("1", "true", "yes")
        self.last = max(time.time(), self.last + 1e-6)  # a new signature for every request, even the same body
        ts = f"{self.last:.6f}"
        r.headers["X-Livemetrics-Key-Id"] = self.key.key_id
        r.headers["X-Livemetrics-Timestamp"] = ts
        r.headers["X-Livemetrics-Signature"] = sign(self.key.secret, ts, body, backfill)
        return r


if os.environ.get("LIVEMETRICS_TEST_OPENAPI_SERVER_KEY"):
    schemathesis.auth.set_from_requests(ServerKeySignature(os.environ["LIVEMETRICS_TEST_OPENAPI_SERVER_KEY"])).apply_to(
        path="/v1/events"
    )
