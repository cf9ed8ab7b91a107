"""What the API's OpenAPI document says about errors, content types and auth, shared by the routers.

Only documentation: the routes raise ``HTTPException`` as before (``{"detail": "..."}``); FastAPI's own
request validation answers 422 with ``{"detail": [...]}``, hence the two shapes of ``detail``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel


class Problem(BaseModel):
    detail: str | list[dict[str, Any]]


class Readiness(BaseModel):
    status: str
    checks: dict[str, Any] = {}


class PromText(Response):
    media_type = "text/plain"  # documented type; the body names its exposition-format version itself


# Documents `Authorization: Bearer <read token>` (api/deps.py checks it); auto_error=False: no behaviour.
bearer = HTTPBearer(auto_error=False, description="a seller's read token (`lm_st_...`) or the admin token")
AUTH = [Security(bearer)]

TOKEN = {
    401: {"model": Problem, "description": "missing, unknown, expired or revoked token"},
    429: {
        "model": Problem,
        "description": "this token is over its request rate (LIVEMETRICS_API_RATE_PER_S)",
        "headers": {
            "Retry-After": {
                "required": True,
                "description": "whole seconds until it may ask again",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}
TOKEN[503] = {
    "model": Problem,
    "description": "this API process has not read its tokens yet (started while Kafka is away): retry",
    "headers": {
        "Retry-After": {
            "required": True,
            "description": "seconds to wait before retrying",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
INVALID = {422: {"model": Problem, "description": "a parameter or the body is invalid; `detail` says which"}}
SELLER = {
    **TOKEN,
    **INVALID,
    404: {"model": Problem, "description": "no such seller for this token (another seller's id looks the same)"},
}
BAD_BODY = {400: {"model": Problem, "description": "the body is not JSON"}}
ADMIN = {**TOKEN, **INVALID, **BAD_BODY, 403: {"model": Problem, "description": "needs the admin token"}}
