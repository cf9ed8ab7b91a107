"""From request bytes to Kafka records: validation, seller stamping and enrichment (no HTTP here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import msgspec

from livemetrics.contract import TOPIC_FOR_TYPE, Event, EventIn, encode, epoch_ms
from livemetrics.settings import Settings
from livemetrics.validation import Rejection, parse_event, split_body, events_to_card_check
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


def _template(client: ClientInfo, received_at: int, settings: Settings) -> Event:
    """An ``Event`` holding what is the same for every event of one request: computed once, not per event."""
    browser, os_, device, is_bot = user_agent_info(client.user_agent)
    return Event(
        event_id="", type="", seller_id=client.seller_id, session_id="", ts=0, received_at=received_at,
        ip_hash=ip_hash(client.ip, settings.ip_hash_secret.get_secret_value(), received_at),
        user_agent=client.user_agent[:512], browser=browser, os=os_, device=device, is_bot=is_bot,
        backfill=client.backfill,
    )


_replace = msgspec.structs.replace


def to_event(ev: EventIn, template: Event, ip: str | None) -> Event:
    """``ev`` with the request's stamps: a copy of ``template`` with the event's own fields set.

    ``event_id`` stays the decoded ``uuid.UUID``: msgspec encodes it as the same canonical string that
    ``str()`` gives, without a Python-level ``UUID.__str__`` per event."""
    return _replace(
        template, event_id=ev.event_id, type=ev.type, session_id=ev.session_id, ts=epoch_ms(ev.ts),
        page=ev.page, checkout=ev.checkout, payment=ev.payment, customer=ev.customer,
        # The IP itself is kept only where sellers need it for diagnostics: payment failures.
        ip=ip if ev.type == "payment_failed" else None,
    )


@lru_cache(maxsize=16)
def _topics(prefix: str) -> dict[str, str]:
    return {t: f"{prefix}{name}" for t, name in TOPIC_FOR_TYPE.items()}


def ingest(body: bytes, client: ClientInfo, settings: Settings, raws: list[bytes] | None = None) -> IngestResult:
    """Split (unless ``raws`` are given) and validate a body; ``BodyError`` when it is unusable as a whole."""
    raws = split_body(body) if raws is None else raws
    received_at = time.time_ns() // 1_000_000
    out = IngestResult(total=len(raws))
    template = _template(client, received_at, settings)
    ip = client.ip
    seller_id = client.seller_id
    topics = _topics(settings.topic_prefix)
    append = out.records.append
    # One linear pass over all events; only the events it flags are checked exactly.
    check = events_to_card_check(raws)
    for i, raw in enumerate(raws):
        parsed = parse_event(raw, i, i in check)
        if parsed.__class__ is Rejection:
            out.rejected.append(parsed)
            continue
        if parsed.seller_id is not None and parsed.seller_id != seller_id:
            out.rejected.append(Rejection(i, f"`seller_id` {parsed.seller_id!r} does not match the key's seller - at `$.seller_id`", "seller"))
            continue
        try:
            ev = to_event(parsed, template, ip)
        except ValueError as exc:
            out.rejected.append(Rejection(i, str(exc), "schema", msgspec.to_builtins(parsed)))
            continue
        append((topics[ev.type], ev.session_id.encode(), encode(ev)))
    return out


def dead_letter(rej: Rejection, client: ClientInfo, received_at: int) -> bytes:
    """The dead-letter copy: reason and the (already card-redacted) event, never raw card data."""
    return _dlq.encode({
        "reason": rej.reason, "error": rej.error, "index": rej.index, "seller_id": client.seller_id,
        "received_at": received_at, "event": rej.raw if rej.reason != "oversize" else None,
    })
