"""ClickHouse unreachable or overloaded: a report (or any route that reads history) answers **503** with
``Retry-After`` and says so, instead of a 500 with no word of why (docs/operations.md, ClickHouse outages).

Live numbers come from Kafka and are not affected; so this is about history alone. Which failures count:
the driver could not get an answer at all (``OperationalError``: connection refused or reset, a timeout),
or ClickHouse answered with a code that means "not now" (memory, too many queries, a table detached by
an operator, ...: ``clickhouse.sink_errors.unavailable``). Any other ClickHouse error is a bug in a query
of ours and stays a 500 with its traceback in the log.
"""

from __future__ import annotations

import logging

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from clickhouse.sink_errors import error_code, unavailable

log = logging.getLogger("livemetrics.api.clickhouse")
RETRY_AFTER_S = 5


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
