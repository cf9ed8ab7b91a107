"""Admin-only erasure of a customer's personal data (the ``livemetrics erase`` command calls this when
the API process owns the embedded chdb directory)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from api.deps import PrincipalDep, SettingsDep
from api.responses import ADMIN, AUTH
from clickhouse.erase import erase

router = APIRouter(tags=["admin"], responses=ADMIN, dependencies=AUTH)


class EraseRequest(BaseModel):
    email: str | None = None
    phone: str | None = None


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
