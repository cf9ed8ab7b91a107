"""ClickHouse unreachable or overloaded: a report (or any route that reads history) answers **503** with
``Retry-After`` and says so, instead of a 500 with no word of why (docs/operations.md, ClickHouse outages).

Live numbers come from Kafka and are not affected; so this is about history alone. Which failures count:
the driver could not get an answer at all (``OperationalError``: connection refused or reset, a timeout),
or ClickHouse answered with a code that means "not now" (memory, too many queries, a table detached by
an operator, ...). Any other ClickHouse error is a bug in a query of ours and stays a 500 with its
traceback in the log.
"""

from __future__ import annotations

import logging

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from clickhouse.sink_errors import error_code

log = logging.getLogger("livemetrics.api.clickhouse")
RETRY_AFTER_S = 5

# ClickHouse error codes (src/Common/ErrorCodes.cpp) that say the server cannot answer now.
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
    """True when ``exc`` says ClickHouse cannot answer now (try again later), not that a query is wrong."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DatabaseError) and error_code(exc) in UNAVAILABLE_CODES


async def _answer(request: Request, exc: Exception) -> JSONResponse:
    if not unavailable(exc):
        raise exc  # a bug of ours: the server's 500, with its traceback
    text = str(exc).strip()
    log.warning("ClickHouse unavailable for %s: %s", request.url.path, text.splitlines()[0][:500] if text else exc)
    # The reason in the log only: the driver's message names the ClickHouse server's address.
    why = (
        "unreachable" if isinstance(exc, OperationalError) else f"busy or a table unavailable (code {error_code(exc)})"
    )
    return JSONResponse(
        {
            "detail": f"history is unavailable: ClickHouse is {why}; try again in a few seconds "
            "(live numbers are not affected)"
        },
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DatabaseError, _answer)  # OperationalError is a DatabaseError
