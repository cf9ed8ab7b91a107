"""Who a token is: the dashboard asks once after login to know its seller and permissions."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep

router = APIRouter(tags=["auth"])


@router.get("/v1/me")
async def me(principal: PrincipalDep) -> dict:
    """The seller this token reads (null for the admin token), its kind and whether it may see personal data."""
    return {"seller_id": principal.seller_id, "kind": principal.kind, "admin": principal.is_admin,
            "can_read_pii": principal.can_read_pii}
