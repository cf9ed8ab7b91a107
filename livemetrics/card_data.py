"""Card data: the exact check over a decoded event (``find_card_data``: card numbers as
``livemetrics.card_numbers`` defines them, in any string, object key or number at any depth, and
security-code fields) and the redacted copy for the dead-letter topic. The fast byte scans that let almost
every event skip it are in ``livemetrics.card_bytes`` (re-exported here).

Pure functions, used by ``livemetrics.validation`` and the gateway.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import msgspec

from livemetrics.card_bytes import EVENT_ID_KEY, body_scanner, events_to_card_check, might_hold_card_data, past_event_id
from livemetrics.card_numbers import card_in_number, card_in_phone, card_in_string, card_item_runs, luhn_ok

__all__ = [
    "EVENT_ID_KEY",
    "body_scanner",
    "card_field_error",
    "events_to_card_check",
    "find_card_data",
    "luhn_ok",
    "might_hold_card_data",
    "past_event_id",
    "redact",
    "redact_checked",
    "scan_decoder",
]

_CVC_KEY = re.compile(
    r"^(cvv2?|cvc2?|csc|cid|cav2|security[_\- ]?code|card[_\- ]?(security|verification)[_\- ]?(code|value)?|card[_\- ]?code)$",
    re.I,
)
# The top-level identifier and epoch-ms timestamp are digits by contract, never card data (the epoch-ms
# range the contract accepts reaches Diners Club's 14-digit 300-305, and Luhn passes one time in ten):
# skipped, but only at the top level and only in the form the contract accepts (see ``_skipped``), so
# that the same digits anywhere else are still card data.
_EPOCH_MS_MIN, _EPOCH_MS_MAX = 946_684_800_000, 32_503_680_000_000  # the range ``contract.epoch_ms`` accepts
REDACTED = "[redacted card number]"


class RawFloat(str):
    """A JSON float's own text, as ``scan_decoder`` gives it: a float would lose the digits of a 17-19
    digit number (and the check needs what the text says as well as what the float encodes back to)."""


scan_decoder = msgspec.json.Decoder(float_hook=RawFloat)


def _is_card_value(v: Any) -> bool:
    cls = v.__class__
    if cls is RawFloat:
        return card_in_number(v) or card_in_number(repr(float(v)))
    if cls is str:
        return card_in_string(v)
    if cls is int:
        return 10**12 <= abs(v) < 10**19 and card_in_number(str(v))
    if cls is float:
        return card_in_number(repr(v))
    if isinstance(v, str):
        return card_in_string(str(v))
    if isinstance(v, Decimal):  # an amount, as the contract decodes it
        return card_in_number(str(v))
    return isinstance(v, int) and not isinstance(v, bool) and 10**12 <= abs(v) < 10**19 and card_in_number(str(int(v)))


def _skipped(key: str, value: Any) -> bool:
    """A top-level ``ts`` in epoch ms or ``event_id`` as a UUID: never card data."""
    if key == "ts":
        return value.__class__ is int and _EPOCH_MS_MIN <= value <= _EPOCH_MS_MAX
    if key == "event_id" and value.__class__ is str:
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True
    return False


def card_field_error(field: str, value: str, phone: bool = False) -> str | None:
    """Why a free-text input named ``field`` (a webhook URL, an email address, a note) is refused when it
    holds a card number by the gateway's rules (``card_in_string``; ``card_in_phone`` for a ``phone``
    number), else None. Never quotes the value."""
    if not (card_in_phone(value) if phone else card_in_string(value)):
        return None
    hint = " (a phone number written with its + before the country code never is)" if phone else ""
    return f"{field}: looks like it holds a card number; card data is never stored or forwarded{hint}"


def find_card_data(obj: Any, path: str = "$") -> str | None:
    """Where the first card data is ("value at `$.x`", "a key of `$.x`"), else None. ``obj`` is decoded by
    ``scan_decoder`` (or holds plain floats). A key is never quoted back: it may be the card number."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str):
                if _CVC_KEY.match(k):
                    return f"value at `{path}.{k}`"
                if card_in_string(k):
                    return f"a key of `{path}`"
            if path == "$" and _skipped(k, v):
                continue
            if path == "$.customer" and k == "phone" and v.__class__ is str:
                if card_in_phone(v):  # `+4915123456789`: a phone number as it is stored (card_in_phone)
                    return f"value at `{path}.{k}`"
                continue
            hit = find_card_data(v, f"{path}.{k}")
            if hit:
                return hit
        # `{"cc1": "4111", "cc2": "1111", ...}`: a card over adjacent values, in the order the keys are written
        # (msgspec keeps the JSON text's order; the raw check reads the same pairs, card_bytes._OBJECT_RUN)
        for first, last in card_item_runs(list(obj.values())):
            names = list(obj)
            return f"a run of values at `{path}.{names[first]}..{names[last]}`"
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            hit = find_card_data(v, f"{path}[{i}]")
            if hit:
                return hit
        for first, last in card_item_runs(obj):  # `["4111", "1111", "1111", "1111"]`: a card over items
            return f"a run of items at `{path}[{first}..{last}]`"
    elif _is_card_value(obj):
        return f"value at `{path}`"
    return None


# What the card check (``might_hold_card_data``, ``find_card_data``) trusts, so that an event it passed may still
# hold card data there: a number right after any `"ts":` (the raw check skips it wherever the key is; the walk
# only the top-level one), an `event_id`'s UUID (the pre-scan skips one wherever its key is), `customer.phone`
# (the walk reads it as a phone number).
_TRUSTED_KEYS = frozenset(("ts", "event_id"))


def redact_checked(obj: Any) -> Any:
    """``redact(obj)`` for an event the card check passed (the dead-letter copy of an event refused for its
    schema): only the values that check trusts are redacted, everything else copied (``RawFloat`` values as
    floats), since the check read it and found nothing. One pass of copying instead of the card rules over the
    whole event a second time (a 32 KiB event of digit groups: ~30 ms;
    tests/unit/test_card_redact_checked.py holds it to ``redact``)."""
    if obj.__class__ is not dict:  # no event (refused for it): read the whole way
        return redact(obj)
    out = _copied(obj)
    if obj.get("customer").__class__ is dict and "phone" in obj["customer"]:
        out["customer"]["phone"] = redact(obj["customer"]["phone"])
    return out


def _copied(obj: Any) -> Any:
    cls = obj.__class__
    if cls is dict:
        return {k: redact(v) if k in _TRUSTED_KEYS else _copied(v) for k, v in obj.items()}
    if cls is list:
        return [_copied(v) for v in obj]
    if cls is RawFloat:
        return float(obj)
    return obj


def redact(obj: Any) -> Any:
    """A copy with every card-like value and key and every CVC field replaced, safe for the dead-letter
    topic; ``RawFloat`` values come back as floats. Nothing is trusted here, not even the top-level `ts`
    (a rejected event's, in the contract's epoch-ms range, may have 14 digits with a Diners prefix)."""
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        keys: list[Any] = []  # out's key for each of obj's values, in order (a card-like key renamed)
        for k, v in obj.items():
            if isinstance(k, str) and _CVC_KEY.match(k):
                out[k] = "[redacted]"
                keys.append(k)
                continue
            if isinstance(k, str) and card_in_string(k):
                k = REDACTED if REDACTED not in out else f"{REDACTED} {len(out)}"
            out[k] = redact(v)
            keys.append(k)
        for first, last in list(card_item_runs(list(obj.values()))):  # each run of values holding a card
            for key in keys[first : last + 1]:  # every value of it (as find_card_data reads them)
                out[key] = REDACTED
        return out
    if isinstance(obj, list):
        out_list = [redact(v) for v in obj]
        for first, last in list(card_item_runs(obj)):  # each run of items holding a card: every item of it
            out_list[first : last + 1] = [REDACTED] * (last + 1 - first)
        return out_list
    if _is_card_value(obj):
        return REDACTED
    if obj.__class__ is RawFloat:
        return float(obj)
    return obj
