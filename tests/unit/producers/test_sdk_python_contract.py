"""The SDK's typed dicts (producers/sdk-python/livemetrics_sdk/events.py) stay in sync with the contract's
JSON schema (livemetrics/contract_schema.py): the same fields, the same required ones, compatible types,
the same event and page types, the same limits. A field added to ``EventIn`` fails here until the SDK has it."""

from __future__ import annotations

import typing
from datetime import datetime
from decimal import Decimal

import livemetrics_sdk
import pytest
from livemetrics_sdk import events as sdk

from livemetrics import contract
from livemetrics.contract_schema import events_components

COMPONENTS = events_components()
REF = "#/components/schemas/"
# The SDK's dict for each schema object; an event (or page) is the union of its per-type variants.
VARIANTS = {
    "Event": [n for n in COMPONENTS if n.startswith("Event_")],
    "Page": [n for n in COMPONENTS if n.startswith("Page_")],
    "Payment": ["Payment", "PaymentFailure"],
    "Checkout": ["Checkout"],
    "Item": ["Item"],
    "Customer": ["Customer"],
}
# A component a $ref names -> the SDK dict it must be.
REF_TO_SDK = {
    "Page": "Page",
    "Item": "Item",
    "Checkout": "Checkout",
    "Payment": "Payment",
    "PaymentFailure": "Payment",
    "Customer": "Customer",
}


def schema_types(node: dict) -> set[str]:
    """The JSON types (or "ref:<Name>") a property allows, null aside."""
    if "$ref" in node:
        return {"ref:" + node["$ref"].removeprefix(REF)}
    if "anyOf" in node or "oneOf" in node:
        return set().union(*(schema_types(n) for n in node.get("anyOf", node.get("oneOf"))))
    if "const" in node or "enum" in node:
        return {"string"}
    t = node.get("type")
    if t == "array":
        return {"array:" + t2 for t2 in schema_types(node["items"])}
    return set() if t in (None, "null") else {t}


def sdk_types(hint) -> set[str]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return set().union(*(sdk_types(a) for a in args))
    if origin is typing.Literal or hint is str or hint is datetime:
        return {"string"}
    if origin is list:
        return {"array:" + t for t in sdk_types(args[0])}
    if origin is dict or hint is dict:
        return {"object"}
    if typing.is_typeddict(hint):
        return {"ref:" + hint.__name__}
    return {int: {"integer"}, float: {"number"}, Decimal: {"number", "string"}}[hint]


def _sdk_refs(types: set[str]) -> set[str]:
    return {t if "ref:" not in t else t.replace(t.split("ref:")[1], REF_TO_SDK[t.split("ref:")[1]]) for t in types}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fields_required_and_types_match_the_contract(name):
    typed = getattr(sdk, name)
    hints = typing.get_type_hints(typed)
    variants = [COMPONENTS[v] for v in VARIANTS[name]]
    fields = set().union(*(v["properties"] for v in variants))
    assert set(hints) == fields, f"{name}: the SDK and the contract name different fields"
    required = set.intersection(*(set(v["required"]) for v in variants))
    assert set(typed.__required_keys__) == required, f"{name}: required fields differ"
    for field in fields:
        allowed = _sdk_refs(set().union(*(schema_types(v["properties"][field]) for v in variants)))
        mine = sdk_types(hints[field])
        assert allowed <= mine, f"{name}.{field}: the contract allows {allowed - mine}, the SDK's type does not"
        assert mine <= allowed | ({"integer"} if "number" in allowed else set()), (
            f"{name}.{field}: the SDK's type allows {mine - allowed}, which the contract refuses"
        )


def test_event_and_page_types_and_limits_match():
    event_types = {COMPONENTS[n]["properties"]["type"]["const"] for n in VARIANTS["Event"]}
    page_types = set().union(
        *(
            {p["properties"]["type"].get("const")} | set(p["properties"]["type"].get("enum", []))
            for p in (COMPONENTS[n] for n in VARIANTS["Page"])
        )
    ) - {None}
    assert set(typing.get_args(sdk.EventType)) == event_types == set(contract.EVENT_TYPES)
    assert set(typing.get_args(sdk.PageType)) == page_types == set(contract.PAGE_TYPES)
    assert (sdk.MAX_BATCH, sdk.MAX_BODY_BYTES, sdk.MAX_EVENT_BYTES) == (
        contract.MAX_BATCH,
        contract.MAX_BODY_BYTES,
        contract.MAX_EVENT_BYTES,
    )
    assert livemetrics_sdk.Event is sdk.Event
