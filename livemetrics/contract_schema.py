"""The JSON schema of ``POST /v1/events`` (OpenAPI 3.1 components), derived from the contract.

Fields, types, patterns and limits come from ``EventIn`` through ``msgspec.json.schema_components``,
so the published OpenAPI changes with the contract and is never written twice. What msgspec cannot
see is added here, from the contract's own constants:

- the cross-field rules of ``check_rules`` (which event type needs or refuses which part; category and
  offer pages; a failure's error code): each event type and page type becomes its own full object
  schema (a copy of msgspec's one with the rule applied), so that a generator or a reader needs no
  ``if``/``then``;
- the two spellings of ``ts`` and their ranges (epoch ms as ``epoch_ms`` takes it, RFC 3339 with an
  offset) and the server's clock bound, in words (it moves with the clock);
- the batch envelope: ``{"events": [...]}``, 1 to ``MAX_BATCH`` items of which at least one is an
  event (``contains``): a batch is answered 202 when one event in it is valid, and each other item is
  rejected on its own, by index, in the 202 body.

Limits a JSON schema cannot state (event size, body size, card data) are in the descriptions.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from livemetrics import contract, details_limits
from livemetrics.contract import EVENT_TYPES, MAX_BATCH, MAX_BODY_BYTES, MAX_EVENT_BYTES, PII_TYPES, EventIn

REF = "#/components/schemas/{name}"
# The integer `ts` range ``epoch_ms`` accepts (2000-01-01 .. 3000-01-01, epoch milliseconds).
EPOCH_MS_MIN, EPOCH_MS_MAX = 946_684_800_000, 32_503_680_000_000

# ``check_rules`` as data: the part each event type must carry (present and not null), and which types
# may carry each part at all (elsewhere it must be absent or null).
_NEEDS = {
    "page_view": "page",
    "checkout_started": "checkout",
    "payment_started": "payment",
    "payment_succeeded": "payment",
    "payment_failed": "payment",
}
_ALLOWED_ON = {
    "checkout": frozenset({"checkout_started"}),
    "payment": frozenset(t for t in EVENT_TYPES if t.startswith("payment_")),
    "customer": PII_TYPES,
}
# Page types that need a field (a slug, so present means non-empty).
_PAGE_NEEDS = {"category": "category", "offer": "offer_id"}


def _ref(name: str) -> dict:
    return {"$ref": REF.format(name=name)}


def _not_null(prop: dict) -> dict:
    """``anyOf: [X, null]`` (msgspec's optional field) -> ``X``."""
    options = [o for o in prop.get("anyOf", [prop]) if o != {"type": "null"}]
    out = options[0] if len(options) == 1 else {"anyOf": options}
    return {k: v for k, v in out.items() if k != "default"}


def _variant(
    base: dict,
    title: str,
    enum_field: str,
    values: list[str],
    needs: list[str],
    forbids: list[str] = (),
    replace: dict | None = None,
) -> dict:
    s = copy.deepcopy(base)
    s["title"] = title
    s["properties"][enum_field] = {"const": values[0]} if len(values) == 1 else {"enum": values}
    for name in needs:
        s["properties"][name] = _not_null(s["properties"][name])
        if name not in s["required"]:
            s["required"].append(name)
    for name in forbids:
        s["properties"][name] = {"type": "null", "description": f"not accepted on {', '.join(values)} events"}
    s["properties"].update(replace or {})
    return s


def _money(node: dict) -> dict:
    """msgspec's ``Decimal`` (``{"type": "string", "format": "decimal"}``) -> what ``money`` accepts: a JSON
    number or a plain decimal string, 0 to MONEY_MAX, at most MONEY_SCALE decimal places (trailing zeros
    aside). The string's pattern is the plain spelling; the gateway also reads Python's other decimal
    spellings (exponent, underscores), which the contract does not promise."""
    top, scale = f"{contract.MONEY_MAX:f}", contract.MONEY_SCALE
    plain = rf"^(?:[0-9]{{1,{len(top) - 1}}}(?:\.[0-9]{{1,{scale}}}0*)?|{top}(?:\.0+)?)$"
    return {
        "description": node.get("description", "an amount"),
        "anyOf": [
            {"type": "number", "minimum": 0, "maximum": int(contract.MONEY_MAX), "multipleOf": float(10**-scale)},
            {"type": "string", "pattern": plain, "examples": node.get("examples", [])},
        ],
    }


def _replace_decimals(node):
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "decimal":
            return _money(node)
        return {k: _replace_decimals(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_decimals(v) for v in node]
    return node


def _ts_schema(max_skew_s: int | None) -> dict:
    bound = (
        f" Live events: at most {max_skew_s} s from the gateway's clock either way (max_clock_skew_s); "
        "backfill (server keys): up to the event TTL back."
        if max_skew_s
        else ""
    )
    return {
        "description": "The sender's time." + bound,
        "anyOf": [
            {"type": "string", "format": "date-time", "description": "RFC 3339, with a time zone offset"},
            {"type": "integer", "minimum": EPOCH_MS_MIN, "maximum": EPOCH_MS_MAX, "description": "epoch milliseconds"},
        ],
    }


def events_components(max_skew_s: int | None = None) -> dict[str, dict]:
    """Every component schema the ``/v1/events`` body refers to, by name (``Event`` is one event of
    any type, ``EventBatch`` the envelope, ``EventsBody`` either)."""
    (_,), raw = msgspec.json.schema_components([EventIn], ref_template=REF)
    raw = _replace_decimals(raw)
    # `payment.details`' own level, as far as a schema can state its limits (check_rules holds the rest:
    # the nested levels, the depth, the size); before, a generator could send a key of 210 characters.
    details = raw["Payment"]["properties"]["details"]["anyOf"][0]
    details.update(maxProperties=details_limits.MAX_ENTRIES, propertyNames={"maxLength": details_limits.MAX_KEY_CHARS})
    out: dict[str, dict] = {k: v for k, v in raw.items() if k not in ("EventIn", "Page")}

    page = raw["Page"]
    plain = [t for t in page["properties"]["type"]["enum"] if t not in _PAGE_NEEDS]
    pages = [_variant(page, f"Page ({t})", "type", [t], [field]) for t, field in _PAGE_NEEDS.items()]
    pages.append(_variant(page, "Page (other types)", "type", plain, []))
    for p in pages:
        out[_name(p["title"])] = p
    out["Page"] = {"title": "Page", "oneOf": [_ref(_name(p["title"])) for p in pages]}

    failure = copy.deepcopy(raw["Payment"])  # payment_failed: a non-empty `error_code`
    failure["title"] = "PaymentFailure"
    failure["properties"]["error_code"] = {**_not_null(failure["properties"]["error_code"]), "minLength": 1}
    failure["required"].append("error_code")
    out["PaymentFailure"] = failure

    event = raw["EventIn"]
    event["properties"]["ts"] = _ts_schema(max_skew_s)
    event["properties"]["seller_id"]["description"] = "optional; when given, the key's own seller"
    variants = []
    for t in EVENT_TYPES:
        forbids = [part for part, types in _ALLOWED_ON.items() if t not in types]
        replace = {"payment": _ref("PaymentFailure")} if t == "payment_failed" else None
        v = _variant(event, f"Event ({t})", "type", [t], [_NEEDS[t]] if t in _NEEDS else [], forbids, replace)
        v["description"] = (
            f"A {t} event. At most {MAX_EVENT_BYTES} bytes of JSON; no value or key may look "
            "like a card number (13-19 digits passing Luhn) or be a card security code field; "
            "integers written as integers (2, not 2.0)."
        )
        out[_name(v["title"])] = v
        variants.append(_ref(_name(v["title"])))
    out["Event"] = {
        "title": "Event",
        "description": "One event of the v1 contract (docs/ingest.md).",
        "oneOf": variants,
    }
    out["EventBatch"] = {
        "title": "EventBatch",
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "contains": _ref("Event"),
                "description": "At least one valid event; every other item is rejected on its own (its index and "
                "the reason in the 202 body) while the valid ones are accepted.",
            }
        },
    }
    out["EventsBody"] = {
        "title": "EventsBody",
        "anyOf": [_ref("Event"), _ref("EventBatch")],
        "description": f'One event or {{"events": [...]}}; at most {MAX_BODY_BYTES} bytes.',
    }
    return out


def _name(title: str) -> str:
    """``"Event (page_view)"`` -> ``"Event_page_view"``: a component name OpenAPI accepts."""
    return title.replace(" (", "_").replace(")", "").replace(" ", "_")


def events_request_body() -> dict[str, Any]:
    """The ``requestBody`` of ``POST /v1/events`` (its schemas are ``events_components``)."""
    return {"required": True, "content": {"application/json": {"schema": _ref("EventsBody")}}}
