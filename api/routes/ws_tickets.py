"""Tickets for the dashboard's WebSocket: a browser cannot set an Authorization header on a WebSocket,
and a token in the URL would land in access logs, so it trades its token (header) for a short-lived,
single-use ticket (api/ws_tickets.py) and opens ``/v1/sellers/{seller_id}/live/ws?ticket=...``."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, TicketsDep, may_read
from api.responses import AUTH, BAD_BODY, SELLER, Problem
from api.ws_tickets import TicketsFull, TooManyForKey

router = APIRouter(tags=["live"], responses=SELLER, dependencies=AUTH)


class TicketRequest(BaseModel):
    seller_id: str = Field(min_length=1, max_length=200, description="the seller whose live socket to open")


class Ticket(BaseModel):
    ticket: str = Field(description="pass as `?ticket=` on the WebSocket URL; usable once")
    expires_in_s: float = Field(description="seconds from now until the ticket is refused")
    ws_path: str = Field(description="the WebSocket path with the ticket, relative to the API's origin")


@router.post(
    "/v1/ws-tickets",
    status_code=201,
    responses={
        **BAD_BODY,
        429: {
            "model": Problem,
            "description": "this token holds its share of unexpired tickets on this API process: retry after a few seconds",
        },
        503: {
            "model": Problem,
            "description": "this API process holds too many unexpired tickets: retry after a few seconds",
        },
    },
)
async def new_ws_ticket(req: TicketRequest, principal: PrincipalDep, tickets: TicketsDep) -> Ticket:
    """A single-use ticket, valid for `expires_in_s` seconds, that opens one live WebSocket of one seller
    for this token (the token itself never goes in a URL)."""
    if not may_read(principal, req.seller_id):
        raise HTTPException(404, "no such seller for this token")
    try:
        ticket, ttl = tickets.issue(principal.kind, principal.key_id, req.seller_id)
    except TooManyForKey as exc:
        raise HTTPException(429, f"{exc}: try again in a few seconds", headers={"Retry-After": "5"}) from None
    except TicketsFull as exc:
        raise HTTPException(503, f"{exc}: try again in a few seconds", headers={"Retry-After": "5"}) from None
    path = f"/v1/sellers/{quote(req.seller_id, safe='')}/live/ws?ticket={ticket}"
    return Ticket(ticket=ticket, expires_in_s=ttl, ws_path=path)
