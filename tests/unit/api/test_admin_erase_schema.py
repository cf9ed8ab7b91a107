"""POST /v1/admin/erase: its OpenAPI schema calls a body valid exactly when the erase takes it (schemathesis
found `{"email": null, "phone": ""}` valid by the schema and refused with 422 by the route)."""

from __future__ import annotations

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.main import create_api
from clickhouse import erase as erase_module
from livemetrics.settings import Settings


class _Reached(Exception):
    """The erase got past its checks to ClickHouse."""


@pytest.fixture(scope="module")
def schema() -> dict:
    doc = create_api(Settings(dev_mode=True), None).openapi()
    body = doc["paths"]["/v1/admin/erase"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return {**body, "components": doc["components"]}


def _taken(email, phone) -> bool:
    import clickhouse.client

    real = clickhouse.client.get_client
    clickhouse.client.get_client = lambda s: (_ for _ in ()).throw(_Reached())
    try:
        erase_module.erase(Settings(dev_mode=True), email, phone)
    except _Reached:
        return True
    except ValueError:
        return False
    finally:
        clickhouse.client.get_client = real
    raise AssertionError("unreachable")


values = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "\t\n", "\x1c", "\x85", "\u3000", "\ufeff", "a@b.example", "12", "+44 20 7946", "١٢٣٤"]),
    st.text(max_size=6),
)


@given(email=values, phone=values, keys=st.sampled_from(["both", "email", "phone", "none"]))
def test_the_schema_calls_valid_exactly_what_the_erase_takes(schema, email, phone, keys):
    body = {"both": {"email": email, "phone": phone}, "email": {"email": email}, "phone": {"phone": phone}}.get(
        keys, {}
    )
    valid = jsonschema_rs.validator_for(schema).is_valid(body)
    assert valid == _taken(body.get("email"), body.get("phone")), body
