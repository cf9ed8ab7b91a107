"""When ClickHouse refuses a batch of the sink's JSON lines (rare): which values are not exactly one event
(``unusable``), the lines without them, renumbered, and those values as ``Refused`` (for the dead-letter
topic). Used by ``events_json`` and ``sink_narrow`` (``events_json`` re-exports them)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from clickhouse.events_read import SinkEvent

log = logging.getLogger("livemetrics.sink")


@dataclass
class Refused:
    """A line ClickHouse refuses: its head (the Kafka position), the message value, and why."""

    head: bytes
    value: bytes
    error: str


OnRefused = Callable[[list[Refused]], None]


def without_unusable(
    heads: list[bytes], values: list[bytes], refusal: Exception
) -> tuple[list[bytes], list[bytes], list[Refused]]:
    """After a refusal: the lines without the values that are not events (logged), renumbered, and those
    values. Re-raises the refusal when every value is an event (it had another cause)."""
    bad = set(unusable(values))
    if not bad:
        raise refusal
    for i in sorted(bad):
        log.warning("undecodable event at %s skipped", position(heads[i]))
    refused = [Refused(heads[i], values[i], f"not exactly one event; ClickHouse: {refusal}") for i in sorted(bad)]
    keep = [i for i in range(len(heads)) if i not in bad]
    return renumber([heads[i] for i in keep]), [values[i] for i in keep], refused


_decoder = msgspec.json.Decoder(SinkEvent)
_INT64 = range(-(1 << 63), 1 << 63)


def position(head: bytes) -> str:
    """``topic[partition]@offset`` of a line, for logs."""
    _, topic, partition, offset = head.decode().strip("[,").split(",")
    return "%s[%s]@%s" % (topic.strip('"'), partition, offset)


def unusable(values: list[bytes]) -> list[int]:
    """Indexes of the values that are not exactly one event (what makes ClickHouse refuse a batch)."""
    bad = []
    for i, value in enumerate(values):
        try:
            e = _decoder.decode(value)
            uuid.UUID(e.event_id)
            if e.ts not in _INT64 or e.received_at not in _INT64:
                raise ValueError("timestamp out of range")
        except (msgspec.DecodeError, ValueError):
            bad.append(i)
    return bad


def renumber(heads: list[bytes]) -> list[bytes]:
    """The same heads numbered from 0 again (after some lines were dropped)."""
    return [b"[%d,%b" % (i, head[head.index(b",") + 1 :]) for i, head in enumerate(heads)]
