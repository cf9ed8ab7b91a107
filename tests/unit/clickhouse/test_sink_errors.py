"""The sink's verdict on a failed insert: rows ClickHouse refuses (narrowed down, dead-lettered) vs an
outage or back-pressure (waited out, nothing dropped). Messages as ClickHouse and clickhouse-connect
write them."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from hypothesis import given
from hypothesis import strategies as st

from clickhouse.sink_errors import REFUSED, REFUSED_CODES, TRANSIENT, classify, error_code

TOO_MANY_PARTITIONS = (
    "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). The "
    "limit is controlled by 'max_partitions_per_insert_block' setting. (TOO_MANY_PARTS)"
)
TOO_MANY_PARTS = (
    "Code: 252. DB::Exception: Too many parts (3001 with average size of 1.00 KiB) in table "
    "'db.events'. Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)"
)
HTTP = "HTTPDriver for http://ch:8123 received ClickHouse error code 6\n Code: 6. DB::Exception: Cannot parse"


@pytest.mark.parametrize(
    "message",
    [
        TOO_MANY_PARTITIONS,
        "Code: 395. DB::Exception: an event lacks a required field: while executing 'FUNCTION throwIf(...)'. "
        "(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)",
        "Code: 27. DB::Exception: Cannot parse input: expected '[' before: 'x'. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
        "Code: 407. DB::Exception: Decimal math overflow. (DECIMAL_OVERFLOW)",
        HTTP,
    ],
)
def test_what_the_rows_hold_is_refused(message):
    assert classify(DatabaseError(message)) == REFUSED


@pytest.mark.parametrize(
    "exc",
    [
        DatabaseError(TOO_MANY_PARTS),  # the same code as too many partitions, but merges are behind: wait
        DatabaseError("Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)"),
        DatabaseError("Code: 159. DB::Exception: Timeout exceeded: elapsed 30 seconds. (TIMEOUT_EXCEEDED)"),
        DatabaseError("Code: 60. DB::Exception: Table db.events does not exist. (UNKNOWN_TABLE)"),
        DatabaseError("Code: 242. DB::Exception: Table is in readonly mode. (TABLE_IS_READ_ONLY)"),
        DatabaseError("chdb: the engine is busy"),  # no code at all
        OperationalError("Error HTTPConnectionPool(host='ch', port=8123): Max retries exceeded (Connection refused)"),
        OperationalError("Code: 6. a driver error that quotes a code is still the connection's"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        ValueError("Code: 6. not a ClickHouse verdict"),
    ],
)
def test_outages_back_pressure_and_the_unknown_are_transient(exc):
    assert classify(exc) == TRANSIENT


@given(st.integers(0, 2000), st.text(max_size=40))
def test_only_the_listed_codes_are_refused(code, tail):
    verdict = classify(DatabaseError(f"Code: {code}. DB::Exception: {tail}"))
    assert error_code(DatabaseError(f"Code: {code}. {tail}")) == code
    assert verdict == (
        REFUSED if code in REFUSED_CODES or (code == 252 and "too many partitions" in tail.lower()) else TRANSIENT
    )
