"""The payment-error list's cursor: what ``encode_cursor`` hands out comes back, anything else is refused."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickhouse.payment_errors import CursorError, decode_cursor, encode_cursor


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@given(st.integers(0, 2**63 - 1), st.text(max_size=200))
def test_a_cursor_handed_out_comes_back(at_ms: int, alert_id: str) -> None:
    assert decode_cursor(encode_cursor(at_ms, alert_id)) == (at_ms, alert_id)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "",
        _raw([1e308, "a"]),  # a float: int() made it a 309-digit instant
        _raw([1.5, "a"]),
        _raw([True, "a"]),
        _raw([-1, "a"]),
        _raw([2**63, "a"]),
        _raw([1, [1]]),  # str() made the list an alert id
        _raw([1, None]),
        _raw([1, "a" * 201]),
        _raw([1, "a", 2]),
        _raw({"at": 1, "id": "a"}),
        _raw("1"),
    ],
)
def test_anything_else_is_refused(cursor: str) -> None:
    with pytest.raises(CursorError, match="cursor"):
        decode_cursor(cursor)
