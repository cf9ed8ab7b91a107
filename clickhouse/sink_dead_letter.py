"""The sink's dead letters: raw-topic messages ClickHouse refuses go to the ``dead-letter`` topic with
ClickHouse's message.

Order matters for the sink's bookkeeping (``sink_narrow``): a refused message is acknowledged by Kafka
before any message after it is stored, because the sink resumes after the highest offset stored. A sink
that crashes after a dead letter and before its batch is committed may send it again: each dead letter
is keyed by its source position, ``topic/partition/offset``, so that a reader can drop the copy.

No card data is added: the gateway refused card data before the message reached the raw topic, and the
event and ClickHouse's message (it quotes column values) are redacted again anyway: the event with
``card_data.redact``, the message by blanking every card number the gateway's rule finds (any separator
it refuses: ``card_numbers.blank_card_numbers``) and any 13-19 digit run, single spaces or dashes allowed,
that passes Luhn (wider than the gateway's rule, on purpose).

A dead-letter topic whose ``max.message.bytes`` (or the broker's ``message.max.bytes``) is below the cap: a dead
letter Kafka refuses as too large is sent again alone, cut to half its size each time until Kafka takes it, and
later dead letters are cut to the size that went through (logged once per cut). Before, Kafka refused it and the
sink took that for an outage, retrying the batch for ever.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading

import msgspec
from confluent_kafka import KafkaError, KafkaException, Producer

from clickhouse.events_unusable import Refused
from clickhouse.sink_narrow import head_position
from livemetrics import card_data, metrics
from livemetrics.card_numbers import blank_card_numbers, luhn_ok
from livemetrics.kafka_config import producer_config
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.sink")

REASON = "clickhouse_refused"
_MAX_ERROR = 2000  # characters of ClickHouse's message kept (it can quote a long stretch of the batch)
# A dead letter's largest value, well under Kafka's default limit (1 MB): a refused value JSON-escaped grows up
# to six times (a control byte becomes \u0001), and a dead letter Kafka refuses would stall the sink (it takes
# a failed send for an outage and retries the batch). Past it the event is replaced by the head of its bytes
# as text (JSON-escaped at most 6 x 64 KiB) with the whole value's size and hash.
MAX_DEAD_LETTER_BYTES = 512 * 1024
_HEAD_BYTES = 64 * 1024
_SHORT_ERROR = 200  # ClickHouse's message cut to this when even an empty head does not fit a lower limit
# Kafka's answers to a message or batch larger than the topic takes
_TOO_LARGE = {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE}
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){12,18}(?![0-9])")


def scrub(text: str) -> str:
    """``text`` with every card number the gateway refuses blanked, and every 13-19 digit run (single spaces
    or dashes allowed) that passes Luhn."""
    text = blank_card_numbers(text, "[redacted]")
    return _DIGIT_RUN.sub(lambda m: "[redacted]" if luhn_ok(re.sub(r"[ \-]", "", m.group())) else m.group(), text)


def dead_letter(refused: Refused, limit: int = MAX_DEAD_LETTER_BYTES) -> tuple[bytes, bytes]:
    """The dead-letter record (key, value) of a refused message: where it came from, why, and the event
    (decoded when it is JSON, else its text), card-redacted; a value larger than ``limit`` bytes is cut to its
    head (halved until it fits, down to none, then ClickHouse's message shortened), with ``event_truncated``
    giving the whole value's size and sha256. Over ``limit`` only when even that does not fit."""
    topic, partition, offset = head_position(refused.head)
    try:
        event = msgspec.json.decode(refused.value)
    except msgspec.DecodeError:
        event = refused.value.decode("utf-8", "replace")
    event = card_data.redact(event)
    seller = event.get("seller_id") if isinstance(event, dict) else None
    body = {
        "reason": REASON,
        "error": scrub(refused.error[:_MAX_ERROR]),
        "seller_id": seller if isinstance(seller, str) else None,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "event": event,
    }
    value = msgspec.json.encode(body)
    for head in [_HEAD_BYTES >> k for k in range(_HEAD_BYTES.bit_length())] + [0]:  # 64 KiB, 32 KiB, ..., 1, 0
        if len(value) <= limit:
            break
        if "event_truncated" not in body:
            body["event_truncated"] = {"bytes": len(refused.value), "sha256": hashlib.sha256(refused.value).hexdigest()}
        body["event"] = card_data.redact(refused.value[:head].decode("utf-8", "replace"))
        value = msgspec.json.encode(body)
    if len(value) > limit:
        body["error"] = scrub(refused.error[:_SHORT_ERROR])
        value = msgspec.json.encode(body)
    return f"{topic}/{partition}/{offset}".encode(), value


class DeadLetters:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topic = settings.topic("dead-letter")
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self._limit = MAX_DEAD_LETTER_BYTES  # lowered when the topic refuses a dead letter as too large

    def send(self, refused: list[Refused]) -> None:
        """Deliver these dead letters; raises if Kafka did not acknowledge every one (a dead letter too large for
        the topic is cut until it fits: raises only when even the smallest form is refused)."""
        if not refused:
            return
        with self._lock:
            if self._producer is None:
                self._producer = Producer(producer_config(self.settings))
            letters = [dead_letter(r, self._limit) for r in refused]
            for i in self._deliver(letters):
                self._deliver_cut(refused[i], len(letters[i][1]))
        metrics.SINK_REFUSED.inc(len(refused))

    def _deliver(self, letters: list[tuple[bytes, bytes]]) -> list[int]:
        """Send these and wait: the indexes Kafka refused as too large; raises on any other failure."""
        assert self._producer is not None
        failed: dict[int, KafkaError] = {}
        for i, (key, value) in enumerate(letters):

            def delivered(err: KafkaError | None, _m: object, i: int = i) -> None:
                if err is not None:
                    failed[i] = err

            self._producer.produce(self.topic, key=key, value=value, on_delivery=delivered)
        left = self._producer.flush(self.settings.delivery_timeout_ms / 1000 + 5)
        other = [e for e in failed.values() if e.code() not in _TOO_LARGE]
        if left or other:
            raise KafkaException(other[0] if other else f"{left} dead letters not delivered")
        return sorted(failed)

    def _deliver_cut(self, refused: Refused, refused_size: int) -> None:
        """One dead letter Kafka refused as too large (of ``refused_size`` bytes, maybe only as part of a batch):
        sent alone, first as it is, then halved until Kafka takes it; later ones are cut to what went through."""
        limit = self._limit
        while True:
            letter = dead_letter(refused, limit)
            if not self._deliver([letter]):
                break
            size, limit = len(letter[1]), min(limit, len(letter[1])) // 2
            if dead_letter(refused, limit)[1] == letter[1]:  # its smallest form already: it cannot be cut further
                raise KafkaException(
                    f"the {self.topic} topic refused a {size}-byte dead letter as too large, the smallest this one "
                    "can be cut to: raise the topic's max.message.bytes"
                )
        if limit < self._limit:
            log.warning(
                "sink: the %s topic refused a %d-byte dead letter as too large (its max.message.bytes or the "
                "broker's message.max.bytes is lower); dead letters are cut to %d bytes from now on",
                self.topic,
                refused_size,
                limit,
            )
            self._limit = limit

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
