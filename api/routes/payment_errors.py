"""The payment-error history a seller follows up on, and the status they give each alert."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, SellerId, SettingsDep
from api.privacy import alert_for
from api.responses import AUTH, BAD_BODY, SELLER, Problem
from api.routes.reports import INSTANT, parse_instant
from clickhouse import payment_errors as store
from livemetrics.card_data import card_field_error

router = APIRouter(tags=["payment errors"], responses=SELLER, dependencies=AUTH)


class StatusChange(BaseModel):
    status: Literal["open", "contacted", "resolved"]
    note: str = Field(
        "", max_length=2000, description="free text, stored; one that holds a card number is refused with 422"
    )


@router.get("/v1/sellers/{seller_id}/payment-errors")
async def list_payment_errors(
    seller_id: SellerId,
    principal: PrincipalDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="the `next_cursor` of the previous page")] = None,
    status: Literal["open", "contacted", "resolved"] | None = None,
    method: str | None = None,
    error_code: str | None = None,
    from_: Annotated[
        str | None, Query(alias="from", description="ISO 8601, before `to`", json_schema_extra=INSTANT)
    ] = None,
    to: Annotated[str | None, Query(description="ISO 8601", json_schema_extra=INSTANT)] = None,
) -> dict:
    """Payment-error alerts with customer contact, order and diagnostics, newest first, paginated. Each
    item's `source` is its trust label: `browser` (sent with a public browser key: anyone could have sent
    it, contact data included), `server` (signed by the seller's server) or `stripe` (a Stripe webhook
    verified with the endpoint's signing secret)."""
    start = parse_instant(from_, "from") if from_ else None
    end = parse_instant(to, "to") if to else None
    if start and end and start >= end:
        raise HTTPException(422, "`from` must be before `to`")
    try:
        page = await asyncio.to_thread(
            store.page, settings, seller_id, limit, cursor, status, method, error_code, start, end
        )
    except store.CursorError as exc:
        raise HTTPException(422, str(exc)) from None
    # Every item says who reported it ("browser" or "server", docs/security.md, Browser keys); rows stored
    # before alerts carried the label count as browser-reported, the less trusted.
    page["items"] = [alert_for(principal, {**a, "source": a.get("source") or "browser"}) for a in page["items"]]
    return page


@router.post(
    "/v1/sellers/{seller_id}/payment-errors/{alert_id}/status",
    responses={
        **BAD_BODY,
        404: {
            "model": Problem,
            "description": "no such seller for this token, or no such payment error for this seller",
        },
    },
)
async def set_payment_error_status(
    seller_id: SellerId, alert_id: str, change: StatusChange, principal: PrincipalDep, settings: SettingsDep
) -> dict:
    """Mark a payment-error alert open, contacted or resolved, with a note; the change is stored."""
    why = card_field_error("note", change.note)
    if why:  # the note is stored with the alert and read back by every token of the seller
        raise HTTPException(422, why)
    if not await asyncio.to_thread(store.exists, settings, seller_id, alert_id):
        raise HTTPException(404, f"no payment error {alert_id!r} for this seller")
    return await asyncio.to_thread(
        store.set_status, settings, seller_id, alert_id, change.status, change.note, principal.key_id
    )
