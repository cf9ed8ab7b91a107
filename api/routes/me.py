"""Who a token is and which sellers it reads: the dashboard asks after sign-in (admins pick a seller)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import PrincipalDep
from api.responses import AUTH, TOKEN

router = APIRouter(tags=["auth"], responses=TOKEN, dependencies=AUTH)


@router.get("/v1/me")
async def me(principal: PrincipalDep) -> dict:
    """The seller this token reads (null for the admin token), its kind and whether it may see personal data."""
    return {
        "seller_id": principal.seller_id,
        "kind": principal.kind,
        "admin": principal.is_admin,
        "can_read_pii": principal.can_read_pii,
    }


@router.get("/v1/sellers")
async def sellers(principal: PrincipalDep, request: Request) -> dict:
    """The sellers this token reads: its own for a seller token, every seller with a live key for the admin."""
    if not principal.is_admin:
        return {"sellers": [principal.seller_id]}
    live = {r.seller_id for r in request.app.state.registry.records() if not r.revoked}
    return {"sellers": sorted(live)}
