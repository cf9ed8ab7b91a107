"""From request bytes to Kafka records: validation, seller stamping and enrichment (no HTTP here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import msgspec

from livemetrics.card_data import REDACTED, events_to_card_check, might_hold_card_data, redact
from livemetrics.card_numbers import card_in_string
from livemetrics.clean_types import CleanEventIn
from livemetrics.contract import MAX_EVENT_BYTES, TOPIC_FOR_TYPE, Event, EventIn, encode, epoch_ms
from livemetrics.settings import Settings
from livemetrics.validation import Rejection, card_rejection, clean_batch, parse_all, parse_event, split_body
from producers.gateway.enrich import ip_hash, user_agent_info
from producers.gateway.ip_salts import DaySalts, LocalSalts
from producers.gateway.time_bound import bounds, out_of_bounds
from producers.gateway.topic_limits import NO_CAP, TopicLimits

_dlq = msgspec.json.Encoder()


@dataclass
class ClientInfo:
    seller_id: str
    ip: str | None
    user_agent: str
    backfill: bool = False
    source: str = "browser"  # the kind of key that authenticated the request: "browser" or "server"
    # (browser, os, device, is_bot) when the caller is no browser (a payment provider's webhook): not
    # parsed from ``user_agent``, whose absence would flag the customer's session as a bot
    agent: tuple[str, str, str, bool] | None = None


@dataclass
class IngestResult:
    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    total: int = 0


# ``Event`` in two parts, split after its last field that differs between the events of one request
# (``seq``, the event's position; ``ip``, kept on payment failures only): the rest (IP hash, user agent, bot flag...) is the same for
# all of them, so it is encoded once per request and appended to each event's own part. Both parts
# are ``Event``'s own fields, types and defaults, so head + tail is byte for byte ``encode(Event(...))``.
def _part_of_event(name: str, fields) -> type:
    return msgspec.defstruct(
        name, [(f.name, f.type) if f.required else (f.name, f.type, f.default) for f in fields], omit_defaults=True
    )


_EVENT_FIELDS = msgspec.structs.fields(Event)
_HEAD_END = [f.name for f in _EVENT_FIELDS].index("ip") + 1
_EventHead = _part_of_event("_EventHead", _EVENT_FIELDS[:_HEAD_END])
_EventTail = _part_of_event("_EventTail", _EVENT_FIELDS[_HEAD_END:])
if _EventHead.__struct_fields__ != (
    "event_id",
    "type",
    "seller_id",
    "session_id",
    "ts",
    "received_at",
    "seq",
    "page",
    "checkout",
    "payment",
    "customer",
    "ip",
):
    raise RuntimeError(f"Event's fields changed: update ingest's positional heads {_EventHead.__struct_fields__}")


USER_AGENT_KEPT = 512  # characters of the User-Agent header stored with each event


def stored_user_agent(header: str) -> str:
    """What is stored of a User-Agent header: its first ``USER_AGENT_KEPT`` characters, or ``REDACTED`` when
    those hold a card number (the body's rule, ``card_in_string``). The header is not part of the body the
    card check reads, and went on every event of the request to ClickHouse and into payment alerts; no
    browser's own header holds one, so the events keep their place and only the header is dropped."""
    return _stored_user_agent(header[:USER_AGENT_KEPT])  # cached by what is kept: a long header costs no memory


@lru_cache(maxsize=8192)
def _stored_user_agent(kept: str) -> str:
    return REDACTED if card_in_string(kept) else kept


def _tail(client: ClientInfo, received_at: int, salts: DaySalts) -> bytes:
    """What closes every event of one request after its own fields: computed once, not per event."""
    browser, os_, device, is_bot = client.agent or user_agent_info(client.user_agent)
    tail = encode(
        _EventTail(
            ip_hash=ip_hash(client.ip, salts, received_at),
            user_agent=stored_user_agent(client.user_agent),
            browser=browser,
            os=os_,
            device=device,
            is_bot=is_bot,
            backfill=client.backfill,
            source=client.source,
        )
    )
    return b"}" if tail == b"{}" else b"," + tail[1:]


_encode = msgspec.json.Encoder().encode
# IP-hash salts of callers that share none with other processes (tools, tests): random, this process only.
PROCESS_SALTS = LocalSalts()


@lru_cache(maxsize=16)
def _topics(prefix: str) -> dict[str, str]:
    return {t: f"{prefix}{name}" for t, name in TOPIC_FOR_TYPE.items()}


def card_suspects(raws: list[bytes]) -> list[int]:
    """The events of a split body that the card check reads in Python: those its one linear pass flags
    (``events_to_card_check``), unless over the size limit (refused for that, unread)."""
    return [i for i in events_to_card_check(raws) if len(raws[i]) <= MAX_EVENT_BYTES]


def parse_body(
    body: bytes, raws: list[bytes] | None = None, suspects: list[int] | None = None
) -> list[EventIn | CleanEventIn | Rejection]:  # type: ignore[valid-type]
    """Each event of a body, decoded and checked, or its rejection; ``BodyError`` when the body is unusable
    as a whole. ``raws``: the body already split (``split_body``), when ``clean_batch`` found it not clean;
    ``suspects``: its ``card_suspects``, when known."""
    if raws is None:
        clean = clean_batch(body)
        if clean is not None:
            return clean
        raws = split_body(body)
    # One linear pass over all events; only the events it flags are checked exactly, once each. A batch with
    # nothing to reject is decoded in one call, any other event by event, the card check's answers kept (each
    # event was read twice more before: the raw check and the walk, with its redaction when it held a card).
    flagged = card_suspects(raws) if suspects is None else suspects
    suspects = [i for i in flagged if might_hold_card_data(raws[i])]
    cards = {i: r for i, r in ((i, card_rejection(raws[i], i)) for i in suspects) if r is not None}
    parsed_all = None if cards else parse_all(raws)
    if parsed_all is None:
        parsed_all = [cards.get(i) or parse_event(raw, i, scan=False) for i, raw in enumerate(raws)]
    return parsed_all


def forbidden_type(parsed_all: list, allowed: list[str]) -> str | None:
    """The first event type in a parsed body that is not in ``allowed`` (a key's event types), else None."""
    for parsed in parsed_all:
        if parsed.__class__ is not Rejection and parsed.type not in allowed:
            return parsed.type
    return None


def ingest(
    body: bytes,
    client: ClientInfo,
    settings: Settings,
    parsed_all: list[EventIn | CleanEventIn | Rejection] | None = None,  # type: ignore[valid-type]
    received_at: int | None = None,
    salts: DaySalts | None = None,
    limits: TopicLimits | None = None,
) -> IngestResult:
    """Validate a body (unless ``parse_body`` did) and build its records; ``BodyError`` when it is unusable
    as a whole. ``received_at``: the gateway's clock (epoch ms), now unless given. ``salts``: the IP-hash
    salts the gateway's replicas share (``SharedSalts``); without, this process's own (``PROCESS_SALTS``)."""
    if parsed_all is None:
        parsed_all = parse_body(body)
    if received_at is None:
        received_at = time.time_ns() // 1_000_000
    # The accepted `ts` range, inside what ``epoch_ms`` takes as is: an epoch-ms integer within it (nearly
    # every event) costs one chained compare; anything else takes the slow branch below.
    lo, hi = bounds(received_at, client.backfill, settings)
    out = IngestResult(total=len(parsed_all))
    tail = _tail(client, received_at, salts or PROCESS_SALTS)
    ip = client.ip
    seller_id = client.seller_id
    topics = _topics(settings.topic_prefix)
    append = out.records.append
    rejected = out.rejected
    # The smallest topic's cap, once per request: one compare per event (most requests are far under it).
    cap = limits.smallest_cap if limits is not None else NO_CAP
    for i, parsed in enumerate(parsed_all):
        if parsed.__class__ is Rejection:
            rejected.append(parsed)
            continue
        if parsed.seller_id is not None and parsed.seller_id != seller_id:
            rejected.append(
                Rejection(
                    i, f"`seller_id` {parsed.seller_id!r} does not match the key's seller - at `$.seller_id`", "seller"
                )
            )
            continue
        ts = parsed.ts
        if ts.__class__ is not int or not lo <= ts <= hi:
            try:
                ts = epoch_ms(ts)
            except ValueError as exc:
                rejected.append(Rejection(i, str(exc), "schema", redact(msgspec.to_builtins(parsed))))
                continue
            if not lo <= ts <= hi:
                rejected.append(
                    Rejection(
                        i,
                        out_of_bounds(ts, received_at, client.backfill, settings),
                        "clock_skew",
                        redact(msgspec.to_builtins(parsed)),
                    )
                )
                continue
        t = parsed.type
        # The event's own fields, then the request's tail. ``event_id`` is the canonical string on the clean
        # path (``CleanEventIn``), else the decoded ``uuid.UUID``, which msgspec encodes as that same string
        # without a Python-level ``UUID.__str__`` per event. ``seq`` is the event's index in the body (0 is
        # omitted): the live state orders a request's events by it. The IP itself is kept only where sellers
        # need it for diagnostics: payment failures.
        head = _EventHead(
            parsed.event_id,
            t,
            seller_id,
            parsed.session_id,
            ts,
            received_at,
            i,
            parsed.page,
            parsed.checkout,
            parsed.payment,
            parsed.customer,
            ip if t == "payment_failed" else None,
        )
        topic, value = topics[t], _encode(head)[:-1] + tail
        if len(value) > cap and limits is not None:
            refused = limits.refusal(topic, value)  # under its own topic's cap, or compressed, it may fit still
            if refused is not None:
                rejected.append(Rejection(i, refused, "topic_limit", redact(msgspec.to_builtins(parsed))))
                continue
        append((topic, parsed.session_id.encode(), value))
    return out


def dead_letter(rej: Rejection, client: ClientInfo, received_at: int) -> bytes:
    """The dead-letter copy: reason and the (already card-redacted) event, never raw card data."""
    return _dlq.encode(
        {
            "reason": rej.reason,
            "error": rej.error,
            "index": rej.index,
            "seller_id": client.seller_id,
            "received_at": received_at,
            "event": rej.raw if rej.reason != "oversize" else None,
        }
    )
