"""From request bytes to Kafka records: validation, seller stamping and enrichment (no HTTP here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec

from livemetrics.contract import TOPIC_FOR_TYPE, Event, EventIn, encode, epoch_ms
from livemetrics.settings import Settings
from livemetrics.validation import Rejection, parse_event, split_body
from producers.gateway.enrich import ip_hash, user_agent_info

_dlq = msgspec.json.Encoder()


@dataclass
class ClientInfo:
    seller_id: str
    ip: str | None
    user_agent: str
    backfill: bool = False


@dataclass
class IngestResult:
    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    total: int = 0


def to_event(ev: EventIn, client: ClientInfo, received_at: int, settings: Settings) -> Event:
    browser, os_, device, is_bot = user_agent_info(client.user_agent)
    return Event(
        event_id=str(ev.event_id),
        type=ev.type,
        seller_id=client.seller_id,
        session_id=ev.session_id,
        ts=epoch_ms(ev.ts),
        received_at=received_at,
        page=ev.page,
        checkout=ev.checkout,
        payment=ev.payment,
        customer=ev.customer,
        # The IP itself is kept only where sellers need it for diagnostics: payment failures.
        ip=client.ip if ev.type == "payment_failed" else None,
        ip_hash=ip_hash(client.ip, settings.ip_hash_secret.get_secret_value(), received_at),
        user_agent=client.user_agent[:512],
        browser=browser,
        os=os_,
        device=device,
        is_bot=is_bot,
        backfill=client.backfill,
    )


def ingest(body: bytes, client: ClientInfo, settings: Settings) -> IngestResult:
    """Split and validate a body; raises ``BodyError`` when the body as a whole is unusable."""
    raws = split_body(body)
    received_at = time.time_ns() // 1_000_000
    out = IngestResult(total=len(raws))
    for i, raw in enumerate(raws):
        parsed = parse_event(raw, i)
        if isinstance(parsed, Rejection):
            out.rejected.append(parsed)
            continue
        if parsed.seller_id is not None and parsed.seller_id != client.seller_id:
            out.rejected.append(Rejection(i, f"`seller_id` {parsed.seller_id!r} does not match the key's seller - at `$.seller_id`", "seller"))
            continue
        try:
            ev = to_event(parsed, client, received_at, settings)
        except ValueError as exc:
            out.rejected.append(Rejection(i, str(exc), "schema"))
            continue
        out.records.append((settings.topic(TOPIC_FOR_TYPE[ev.type]), ev.session_id.encode(), encode(ev)))
    return out


def dead_letter(rej: Rejection, client: ClientInfo, received_at: int) -> bytes:
    """The dead-letter copy: reason and the (already card-redacted) event, never raw card data."""
    return _dlq.encode({
        "reason": rej.reason, "error": rej.error, "index": rej.index, "seller_id": client.seller_id,
        "received_at": received_at, "event": rej.raw if rej.reason != "oversize" else None,
    })
