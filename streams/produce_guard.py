"""No message the worker produces exceeds the broker's limit (docs/live-semantics.md).

Bound by construction: every derived message (sums rows and their reports, per-partition gauges rows,
minute windows, snapshots) is bounded by the per-seller caps (``streams/caps.py``); ``check_caps_fit``
refuses to start a worker whose caps would not fit ``worker_max_message_bytes``, with the sum that
failed. Checked where produced: ``fits`` / ``send`` measure a message before it goes out and, when it
is too large, log it (what, key, size, limit), count it in ``livemetrics_worker_messages_skipped_total``
(``streams/worker_metrics.py``)
and skip it instead of letting ``MessageSizeTooLargeError`` (or librdkafka's ``MSG_SIZE_TOO_LARGE``)
crash the worker. Only derived messages are ever skipped, ones the worker sends again from its state
(the next report or snapshot of the seller); raw events are never produced here."""

from __future__ import annotations

import logging
from typing import Any

from livemetrics.settings import RAW_TOPICS, Settings
from streams.caps import METHOD_STEPS, Caps
from streams.worker_metrics import SKIPPED

log = logging.getLogger("livemetrics.worker")

# Room for the record's own framing (headers, timestamps, batch header) next to key and value.
RECORD_OVERHEAD = 512
_SLUG, _METHOD, _SELLER, _NUMBER = 100, 40, 200, 20  # longest slug, method, seller id, JSON integer


def worst_case_row_bytes(caps: Caps, s: Settings) -> int:
    """An upper bound on the JSON of one (seller, partition) sums row, its report and its gauges row."""
    per_key = 6 + _NUMBER  # quotes, colon, comma and a count
    v = (
        caps.category * (len("live:category:") + _SLUG + per_key)
        + caps.offer * (len("live:offer:") + _SLUG + per_key)
        + 40 * (32 + per_key)
    )  # the fixed gauges (home, active, abandoned:*, ~other, folded:*, ...)
    minute = 5 * (24 + per_key) + (caps.payment_method + 1) * len(METHOD_STEPS) * (
        len("m::succeeded") + _METHOD + per_key
    )
    r = 62 * (16 + minute)  # 60 minutes shown, and the current and a stale one until the next prune
    hw = len(RAW_TOPICS) * (len(s.topic_prefix) + 32 + per_key)
    return v + r + hw + _SELLER + 256


def check_caps_fit(caps: Caps, s: Settings) -> None:
    """Refuse caps whose largest message would not fit the limit (a clear error, at start)."""
    need = worst_case_row_bytes(caps, s) + RECORD_OVERHEAD
    if need > s.worker_max_message_bytes:
        raise SystemExit(
            f"live caps too large for worker_max_message_bytes={s.worker_max_message_bytes}: live_max_categories="
            f"{caps.category}, live_max_offers={caps.offer}, live_max_payment_methods={caps.payment_method} make "
            f"a sums row up to {need} bytes; lower the caps (or raise the broker's message.max.bytes and this setting)"
        )


def fits(limit: int, key: bytes | None, value: bytes | None, what: str) -> bool:
    """True if the message fits ``limit``; else logged, counted and False (the caller skips it)."""
    size = len(key or b"") + len(value or b"") + RECORD_OVERHEAD
    if size <= limit:
        return True
    SKIPPED.labels(what).inc()
    log.error(
        "%s for %r not produced: %d bytes is over worker_max_message_bytes=%d (it is sent again from the "
        "worker's state with the next change)",
        what,
        (key or b"")[:200],
        size,
        limit,
    )
    return False


async def send(topic: Any, key: bytes, value: bytes, what: str) -> Any:
    """``topic.send`` for a derived message: skipped (logged, counted) if over ``limit``, and a size error
    from the client is handled the same way rather than stopping the worker."""
    from aiokafka.errors import MessageSizeTooLargeError

    if not fits(limit, key, value, what):
        return None
    try:
        return await topic.send(key=key, value=value)
    except MessageSizeTooLargeError as exc:
        SKIPPED.labels(what).inc()
        log.error("%s for %r not produced: %s", what, key[:200], exc)
        return None


limit = Settings.model_fields["worker_max_message_bytes"].default  # set by ``configure`` in the worker


def configure(caps: Caps, s: Settings) -> None:
    """At the worker's start: the caps must fit the limit, which ``send`` then checks against."""
    global limit
    check_caps_fit(caps, s)
    limit = s.worker_max_message_bytes
