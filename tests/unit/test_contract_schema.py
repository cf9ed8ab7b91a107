"""The published JSON schema of ``POST /v1/events`` says what the contract says: generated valid events
are schema-valid, and every near-valid event whose fault a JSON schema can state is schema-invalid
(the fuzz test shows the gateway's verdicts on the same strategies)."""

from __future__ import annotations

import copy

import jsonschema_rs
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livemetrics.contract import EVENT_TYPES, MAX_BATCH, EventIn
from livemetrics.contract_schema import REF, events_components
from tests.support import factories as f
from tests.support.fuzz_bodies import MUTATIONS, valid_events

# Faults that depend on the clock, the key or the card scan: only the gateway can judge them.
NOT_IN_SCHEMA = {
    "ts 3 days ahead",
    "ts 3 days back",
    "another seller",
    "card number in a path",
    "card number in details",
    "card number as a number",
    "card number as a key",
    "security code",
}


def validator(name: str):
    components = events_components(86_400)
    schema = {"$ref": REF.format(name=name), "components": {"schemas": components}}
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


EVENT = validator("Event")
BODY = validator("EventsBody")


def test_every_contract_field_is_in_every_event_schema():
    fields = {fl.name for fl in msgspec.structs.fields(EventIn)}
    variants = {name: s for name, s in events_components().items() if name.startswith("Event_")}
    assert len(variants) == len(EVENT_TYPES)
    for name, schema in variants.items():
        assert set(schema["properties"]) == fields, name
        assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    "event",
    [
        f.page_view(),
        f.page_view("category", category="lamps"),
        f.heartbeat(),
        f.checkout_started(),
        f.payment_failed(),
        f.payment_succeeded(),
    ],
)
def test_factory_events_are_valid(event):
    assert EVENT.is_valid(event), list(EVENT.iter_errors(event))
    assert BODY.is_valid(event) and BODY.is_valid({"events": [event]})


def test_the_batch_envelope():
    ev = f.page_view()
    assert not BODY.is_valid({"events": []})
    assert not BODY.is_valid({"events": [ev] * (MAX_BATCH + 1)})
    assert BODY.is_valid({"events": [ev] * MAX_BATCH})
    # One valid event is enough: the others are rejected one by one in the 202 answer.
    assert BODY.is_valid({"events": [{"junk": 1}, ev]})
    assert not BODY.is_valid({"events": [{"junk": 1}]})
    assert not BODY.is_valid([ev])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_events("seller"), st.data())
def test_generated_events_agree_with_the_schema(ev, data):
    assert EVENT.is_valid(ev), list(EVENT.iter_errors(ev))
    applicable = [n for n, m in MUTATIONS.items() if n not in NOT_IN_SCHEMA and m(copy.deepcopy(ev)) is not None]
    name = data.draw(st.sampled_from(applicable))
    bad = MUTATIONS[name](copy.deepcopy(ev))
    assert not EVENT.is_valid(bad), f"{name}: {bad}"
