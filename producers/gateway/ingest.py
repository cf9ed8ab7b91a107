"""From request bytes to Kafka records: validation, seller stamping and enrichment (no HTTP here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec

from livemetrics.contract import TOPIC_FOR_TYPE, Event, EventIn, encode, epoch_ms
from livemetrics.settings import Settings
from livemetrics.validation import Rejection, might_hold_card_data, parse_event, split_body
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


@dataclass(slots=True)
class _Stamps:
    """What is the same for every event of one request: computed once, not per event."""

    seller_id: str
    received_at: int
    ip: str | None
    ip_hash: str
    user_agent: str
    browser: str
    os: str
    device: str
    is_bot: bool
    backfill: bool


def stamps_for(client: ClientInfo, received_at: int, settings: Settings) -> _Stamps:
    browser, os_, device, is_bot = user_agent_info(client.user_agent)
    return _Stamps(client.seller_id, received_at, client.ip,
                   ip_hash(client.ip, settings.ip_hash_secret.get_secret_value(), received_at),
                   client.user_agent[:512], browser, os_, device, is_bot, client.backfill)


def to_event(ev: EventIn, st: _Stamps) -> Event:
    return Event(
        event_id=str(ev.event_id),
        type=ev.type,
        seller_id=st.seller_id,
        session_id=ev.session_id,
        ts=epoch_ms(ev.ts),
        received_at=st.received_at,
        page=ev.page,
        checkout=ev.checkout,
        payment=ev.payment,
        customer=ev.customer,
        # The IP itself is kept only where sellers need it for diagnostics: payment failures.
        ip=st.ip if ev.type == "payment_failed" else None,
        ip_hash=st.ip_hash,
        user_agent=st.user_agent,
        browser=st.browser,
        os=st.os,
        device=st.device,
        is_bot=st.is_bot,
        backfill=st.backfill,
    )


def ingest(body: bytes, client: ClientInfo, settings: Settings, raws: list[bytes] | None = None) -> IngestResult:
    """Split (unless ``raws`` are given) and validate a body; ``BodyError`` when it is unusable as a whole."""
    raws = split_body(body) if raws is None else raws
    received_at = time.time_ns() // 1_000_000
    out = IngestResult(total=len(raws))
    st = stamps_for(client, received_at, settings)
    topics = {t: settings.topic(name) for t, name in TOPIC_FOR_TYPE.items()}
    append = out.records.append
    scan = might_hold_card_data(body)  # one pass over the body spares the per-event card scan
    for i, raw in enumerate(raws):
        parsed = parse_event(raw, i, scan)
        if isinstance(parsed, Rejection):
            out.rejected.append(parsed)
            continue
        if parsed.seller_id is not None and parsed.seller_id != client.seller_id:
            out.rejected.append(Rejection(i, f"`seller_id` {parsed.seller_id!r} does not match the key's seller - at `$.seller_id`", "seller"))
            continue
        try:
            ev = to_event(parsed, st)
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
