"""A seller's notification channels (webhooks, email addresses) and the webhook deliveries made to them
(docs/notifications.md). Managed with the seller's token (or the admin token)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, SellerId, SettingsDep
from api.notify.channels import ChannelBook, new_channel
from api.notify.rules import KINDS, RuleError, Rules, check
from api.notify.targets import TargetError, Unresolvable, check_email, check_resolves_public, check_webhook_url
from api.rate_limit import TokenBuckets
from api.responses import AUTH, BAD_BODY, SELLER, Problem
from clickhouse import notify_deliveries as store
from livemetrics.card_data import card_field_error
from livemetrics.shares import Shares

router = APIRouter(tags=["notifications"], responses=SELLER, dependencies=AUTH)
PREFIX = "/v1/sellers/{seller_id}/notifications"
NOT_FOUND = {404: {"model": Problem, "description": "no such seller for this token, or no such channel/delivery"}}
CONFLICT = {
    409: {
        "model": Problem,
        "description": "the channel exists already, the seller has the most channels "
        "allowed, or (email) this deployment has no SMTP server",
    }
}
UNAVAILABLE = {503: {"model": Problem, "description": "Kafka did not store the change"}}
# A new webhook's host name is looked up in threads of its own, not the loop's default executor, in which every
# route's ClickHouse read runs: a lookup lasts as long as the seller's own name server makes the resolver wait
# (~10-30 s for one that never answers), and two sellers adding such webhooks held every default thread while
# every seller's reports waited. The add waits for a slot and its lookup together at most notify_timeout_s.
# Each seller has LOOKUPS_PER_SELLER of the LOOKUP_THREADS at once (a slot is held until its lookup ends,
# even past the timeout, as the thread is): one seller adding names that never answer held all 4 threads
# for ~30 s, and every other seller's add waited its timeout and was taken unchecked.
LOOKUP_THREADS = 8
LOOKUPS_PER_SELLER = 1
_LOOKUPS = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="webhook-add-dns")


class NewWebhook(BaseModel):
    url: str = Field(
        ...,
        min_length=1,
        max_length=2048,
        description="https://..., a public address (outside dev "
        "mode; a loopback, private or link-local host is refused with 422); one that holds a card number "
        "(path or query string) is refused with 422",
    )


class NewEmail(BaseModel):
    address: str = Field(
        ...,
        min_length=3,
        max_length=254,
        description="an email address; one that holds a card number is refused with 422",
    )


class RulesIn(BaseModel):
    kinds: list[Literal[KINDS]] = Field([], description="alert kinds sent to the channel; empty: every kind")  # type: ignore[valid-type]
    min_amount: str = Field(
        "", pattern=r"^([0-9]{1,12}(\.[0-9]{1,4})?)?$", description="payment failures of less are not sent; '' : all"
    )
    quiet_start: str = Field(
        "",
        pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9])?$",
        description="HH:MM in tz; with quiet_end; '' : no quiet hours",
    )
    quiet_end: str = Field("", pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9])?$")
    tz: str = Field("UTC", max_length=64, description="the seller's IANA time zone, e.g. Europe/Berlin")


CHANGE_BURST = 20  # channel changes a seller may make at once before notify_channel_changes_per_hour applies


def _may_change(request: Request, seller_id: str) -> None:
    """Count one channel change of the seller; 429 with Retry-After past its budget. Each change is a record
    of the compacted seller-channels topic, which every API replica and notifier reads whole at its start and
    Kafka compacts only once its segment rolls (7 days or 1 GiB): a token saving rules in a loop wrote one per
    request, 1.7 M a day at its API rate, and every replica's start read them all."""
    state = request.app.state
    buckets = getattr(state, "channel_changes", None)
    if buckets is None:  # made on the loop, where every change is counted
        rate = state.settings.notify_channel_changes_per_hour
        buckets = state.channel_changes = TokenBuckets(rate / 3600, CHANGE_BURST)
    buckets.charge(
        seller_id,
        f"this seller changed its notification channels too often: at most {buckets.rate * 3600:g} changes an "
        f"hour after {CHANGE_BURST} at once (LIVEMETRICS_NOTIFY_CHANNEL_CHANGES_PER_HOUR)",
    )


def _refuse_card_numbers(field: str, value: str) -> None:
    """422 naming ``field`` when it holds a card number (the gateway's rule): a channel's target is stored in
    seller-channels and used for every delivery (a webhook URL's path and query string go out with each
    POST). Checked before anything else, the name's lookup included."""
    why = card_field_error(field, value)
    if why:
        raise HTTPException(422, why)


def _channels(request: Request) -> ChannelBook:
    book = getattr(request.app.state, "channels", None)
    if book is None:
        raise HTTPException(503, "notification channels are not loaded on this API process")
    return book


async def _add(request: Request, seller_id: str, principal, kind: str, target: str) -> tuple[dict, str]:
    settings, book = request.app.state.settings, _channels(request)
    mine = book.of_seller(seller_id)
    if any(c.kind == kind and c.target == target for c in mine):
        raise HTTPException(409, f"this {kind} is already a channel of the seller")
    if len(mine) >= settings.notify_max_channels:
        raise HTTPException(
            409,
            f"a seller has at most {settings.notify_max_channels} channels "
            "(LIVEMETRICS_NOTIFY_MAX_CHANNELS): remove one first",
        )
    _may_change(request, seller_id)
    ch, secret = new_channel(
        seller_id,
        kind,
        target,
        settings.key_encryption_key.get_secret_value(),
        created_by=principal.key_id,
        can_read_pii=principal.can_read_pii,
    )
    try:
        await asyncio.to_thread(book.add, ch)
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from None
    return ch.public(), secret


def _lookup_shares(request: Request) -> Shares:
    state = request.app.state
    shares = getattr(state, "webhook_lookups", None)
    if shares is None:  # made on the loop, where every add waits for its slot
        shares = state.webhook_lookups = Shares(LOOKUPS_PER_SELLER)
    return shares


async def _check_host(request: Request, seller_id: str, url: str, timeout: float) -> None:
    """``check_resolves_public`` in a thread of ``_LOOKUPS``, at most LOOKUPS_PER_SELLER of the seller's at
    once; TimeoutError when a slot and the lookup took more than ``timeout`` together."""
    shares, loop = _lookup_shares(request), asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        await shares.acquire(seller_id)
        lookup = loop.run_in_executor(_LOOKUPS, check_resolves_public, url, False)
        lookup.add_done_callback(lambda done: _lookup_done(shares, seller_id, done))
        await asyncio.shield(lookup)  # past the timeout it runs on, holding its slot


def _lookup_done(shares: Shares, seller_id: str, lookup: asyncio.Future) -> None:
    """A lookup ended: its slot freed, its outcome read (one that ended after the timeout is not logged as
    never retrieved)."""
    shares.release(seller_id)
    if not lookup.cancelled():
        lookup.exception()


@router.get(PREFIX + "/channels")
async def list_channels(seller_id: SellerId, request: Request) -> dict:
    """The seller's webhooks and email addresses (never a signing secret)."""
    return {"channels": [c.public() for c in _channels(request).of_seller(seller_id)]}


@router.post(PREFIX + "/webhooks", status_code=201, responses={**BAD_BODY, **CONFLICT, **UNAVAILABLE})
async def add_webhook(
    seller_id: SellerId, body: NewWebhook, principal: PrincipalDep, request: Request, settings: SettingsDep
) -> dict:
    """Add a webhook; every alert is POSTed to it, signed. The answer's `signing_secret` is shown only
    now: keep it to verify `X-Livemetrics-Signature`. A token without the personal-data right adds a
    webhook that receives masked alerts."""
    _refuse_card_numbers("url", body.url)
    try:
        url = check_webhook_url(body.url.strip(), settings.dev_mode)
        _refuse_card_numbers("url", url)  # as it is stored, after its normalisation too
        if not settings.dev_mode:  # a name that points inside now is refused now (and before every POST)
            await _check_host(request, seller_id, url, settings.notify_timeout_s)
    except (Unresolvable, TimeoutError):
        pass  # not set up yet, perhaps, or its name server is slow: every delivery checks it again
    except TargetError as exc:
        raise HTTPException(422, f"url: {exc}") from None
    channel, secret = await _add(request, seller_id, principal, "webhook", url)
    return {**channel, "signing_secret": secret}


@router.post(PREFIX + "/emails", status_code=201, responses={**BAD_BODY, **CONFLICT, **UNAVAILABLE})
async def add_email(seller_id: SellerId, body: NewEmail, principal: PrincipalDep, request: Request) -> dict:
    """Add an email address that alerts are sent to (one email per alert; a digest past
    notify_email_max per window). Refused while the deployment has no SMTP server (LIVEMETRICS_SMTP_HOST)."""
    if not request.app.state.settings.smtp_host:
        raise HTTPException(409, "email alerts are off on this deployment: the operator sets LIVEMETRICS_SMTP_HOST")
    _refuse_card_numbers("address", body.address)
    try:
        address = check_email(body.address)
    except TargetError as exc:
        raise HTTPException(422, f"address: {exc}") from None
    channel, _ = await _add(request, seller_id, principal, "email", address)
    return channel


@router.delete(PREFIX + "/channels/{channel_id}", status_code=204, responses={**NOT_FOUND, **UNAVAILABLE})
async def remove_channel(seller_id: SellerId, channel_id: str, request: Request) -> Response:
    """Remove a channel; deliveries still owed to it fail with "the channel was removed"."""
    book = _channels(request)
    ch = book.get(channel_id)
    if ch is None or ch.seller_id != seller_id:
        raise HTTPException(404, f"no channel {channel_id!r} for this seller")
    _may_change(request, seller_id)
    try:
        await asyncio.to_thread(book.remove, ch)
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from None
    return Response(status_code=204)


@router.put(PREFIX + "/channels/{channel_id}/rules", responses={**BAD_BODY, **NOT_FOUND, **UNAVAILABLE})
async def set_rules(seller_id: SellerId, channel_id: str, body: RulesIn, request: Request) -> dict:
    """Which alerts go to this channel and when: kinds, a minimum amount for payment failures, quiet
    hours in the seller's time zone (deliveries wait for their end; emails then come as one digest)."""
    book = _channels(request)
    ch = book.get(channel_id)
    if ch is None or ch.seller_id != seller_id:
        raise HTTPException(404, f"no channel {channel_id!r} for this seller")
    try:
        rules = check(Rules(**body.model_dump()))
    except RuleError as exc:
        raise HTTPException(422, str(exc)) from None
    _may_change(request, seller_id)
    try:
        await asyncio.to_thread(book.add, msgspec.structs.replace(ch, rules=rules))
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from None
    return book.get(channel_id).public()


@router.get(PREFIX + "/deliveries")
async def list_deliveries(
    seller_id: SellerId,
    settings: SettingsDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict:
    """Webhook deliveries, newest first: `pending` (retrying; `last_error` says why), `delivered`, or
    `failed` (retried for notify_retry_for_s; redeliver it with POST .../redeliver)."""
    return {"items": await asyncio.to_thread(store.page, settings, seller_id, status, limit)}


@router.post(
    PREFIX + "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "already being delivered"}},
)
async def redeliver(seller_id: SellerId, delivery_id: str, request: Request, settings: SettingsDep) -> dict:
    """Send a delivery again now (a failed one, or a delivered one the receiver lost), with a fresh
    retry window. The receiver sees the same `Idempotency-Key`. On an API process that does not deliver
    (`LIVEMETRICS_NOTIFY=false`), or whose notifier does not own the seller, it is stored as pending and
    the notifier that owns the seller takes it up within `LIVEMETRICS_NOTIFY_POLL_S`."""
    notifier = getattr(request.app.state, "notifier", None)
    dispatcher = notifier.dispatcher if notifier is not None else None
    d = await asyncio.to_thread(store.one, settings, seller_id, delivery_id)
    if d is None:
        raise HTTPException(404, f"no delivery {delivery_id!r} for this seller")
    if dispatcher.being_delivered(d) if dispatcher is not None else d.status == "pending":
        raise HTTPException(409, "this delivery is already being delivered (pending)")
    now_ms = int(time.time() * 1000)
    again = d.but(status="pending", attempts=0, last_error="", created_ms=now_ms, next_ms=now_ms)
    await asyncio.to_thread(store.record, settings, [again])
    if dispatcher is not None:
        dispatcher.schedule(again)
    return {"delivery_id": delivery_id, "status": "pending"}
