"""Why an insert failed, for the sink: ``TRANSIENT`` (wait and retry the same rows, drop nothing) or
``REFUSED`` (ClickHouse would refuse the same rows again: narrow the batch down to them, see
``sink_narrow``). And, for reads and start-up, whether ClickHouse cannot answer *now* (``unavailable``).

Pure: decided from the exception's type and the ``Code: NNN`` that ClickHouse puts in its message
(clickhouse-connect's ``DatabaseError`` carries it, embedded and over HTTP alike). Only codes that are
about the rows themselves count as refused; anything else, unknown codes included, is transient, so that
an outage or a schema an operator is still fixing never sends valid rows to the dead-letter topic (the
sink's lag and ``/readyz`` show the stall instead).
"""

from __future__ import annotations

import re

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

TRANSIENT = "transient"
REFUSED = "refused"

_CODE = re.compile(r"\bCode: (\d+)\b")
_TOO_MANY_PARTS = 252  # both "too many parts" (merges behind: wait) and "too many partitions" (the rows)

# ClickHouse error codes (src/Common/ErrorCodes.cpp) that the same rows would get again.
REFUSED_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        128,  # TOO_LARGE_ARRAY_SIZE
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (the sink statement's own checks)
        407,  # DECIMAL_OVERFLOW
        469,  # VIOLATED_CONSTRAINT
        691,  # UNKNOWN_ELEMENT_OF_ENUM
    }
)


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code in the exception's message, if there is one."""
    m = _CODE.search(str(exc))
    return int(m.group(1)) if m else None


def classify(exc: BaseException) -> str:
    """``REFUSED`` when ClickHouse refused these rows for what they hold, else ``TRANSIENT``."""
    if not isinstance(exc, DatabaseError) or isinstance(exc, OperationalError):
        return TRANSIENT  # not a verdict on the rows: connection refused or reset, timeouts, our own bugs
    code = error_code(exc)
    if code is None:
        return TRANSIENT  # no ClickHouse code: an engine or driver error
    if code == _TOO_MANY_PARTS:
        return REFUSED if "too many partitions" in str(exc).lower() else TRANSIENT
    return REFUSED if code in REFUSED_CODES else TRANSIENT


# Codes that say the server cannot answer now (reads and start-up wait or answer 503; anything else is a
# bug in a statement of ours).
UNAVAILABLE_CODES = frozenset(
    {
        60,  # UNKNOWN_TABLE (detached or renamed by an operator)
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        160,  # TOO_SLOW
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        279,  # ALL_CONNECTION_TRIES_FAILED
        394,  # QUERY_WAS_CANCELLED
        999,  # KEEPER_EXCEPTION
    }
)


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says ClickHouse cannot answer now (try again later), not that a statement is wrong:
    the driver got no answer (``OperationalError``: connection refused or reset, a timeout), or ClickHouse
    answered with one of ``UNAVAILABLE_CODES``."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DatabaseError) and error_code(exc) in UNAVAILABLE_CODES
