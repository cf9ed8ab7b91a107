"""Admin-only erasure of a customer's personal data (the ``livemetrics erase`` command calls this when
the API process owns the embedded chdb directory)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PrincipalDep, SettingsDep
from api.responses import ADMIN, AUTH
from clickhouse.erase import erase

router = APIRouter(tags=["admin"], responses=ADMIN, dependencies=AUTH)


# A character that is not white space as Python's str.strip() sees it (clickhouse/erase.py refuses a blank
# email), spelt out: JSON Schema's (ECMA's) \s is another set (it has U+FEFF, not U+001C-U+001F nor U+0085).
NOT_BLANK = "[^\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
FOUR_DIGITS = "(?:[^0-9]*[0-9]){4}"


class EraseRequest(BaseModel):
    """Who to erase: `email`, `phone` or both (at least one)."""

    # clickhouse/erase.py checks these rules and names the one broken (422); the schema states them too, so
    # that no request it calls valid is refused (schemathesis: `{"email": null, "phone": ""}` was valid by the
    # schema and refused by the route).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["email"], "properties": {"email": {"type": "string"}}},
                {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
            ]
        }
    )

    email: str | None = Field(
        None,
        description="The customer's email address; not blank (it would match every row without one); one that "
        "holds a card number is refused with 422.",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    phone: str | None = Field(
        None,
        description="The customer's phone number, any spelling, with at least 4 digits (0-9); one that holds a "
        "card number is refused with 422.",
        json_schema_extra={"pattern": FOUR_DIGITS},
    )


@router.post("/v1/admin/erase")
async def erase_customer(req: EraseRequest, principal: PrincipalDep, settings: SettingsDep) -> dict:
    """Erase one customer's personal data (by email and/or phone) from every table; admin token only."""
    if not principal.is_admin:
        raise HTTPException(403, "erasure needs the admin token")
    try:
        removed = await asyncio.to_thread(erase, settings, req.email, req.phone)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    except RuntimeError as exc:  # ClickHouse erased, the erase record not taken by Kafka: say so, retry is safe
        raise HTTPException(503, str(exc)) from None
    return {"removed": removed}
