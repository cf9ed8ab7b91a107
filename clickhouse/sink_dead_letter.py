"""The sink's dead letters: raw-topic messages ClickHouse refuses go to the ``dead-letter`` topic with
ClickHouse's message.

Order matters for the sink's bookkeeping (``sink_narrow``): a refused message is acknowledged by Kafka
before any message after it is stored, because the sink resumes after the highest offset stored. A sink
that crashes after a dead letter and before its batch is committed may send it again: each dead letter
is keyed by its source position, ``topic/partition/offset``, so that a reader can drop the copy.

No card data is added: the gateway refused card data before the message reached the raw topic, and the
event and ClickHouse's message (it quotes column values) are redacted again anyway: the event with
``card_data.redact``, the message by blanking any 13-19 digit run that passes Luhn (wider than the
gateway's rule, on purpose).
"""

from __future__ import annotations

import hashlib
import re
import threading

import msgspec
from confluent_kafka import KafkaException, Producer

from clickhouse.events_unusable import Refused
from clickhouse.sink_narrow import head_position
from livemetrics import card_data, metrics
from livemetrics.card_numbers import luhn_ok
from livemetrics.kafka_config import producer_config
from livemetrics.settings import Settings

REASON = "clickhouse_refused"
_MAX_ERROR = 2000  # characters of ClickHouse's message kept (it can quote a long stretch of the batch)
# A dead letter's largest value, well under Kafka's default limit (1 MB): a refused value JSON-escaped grows up
# to six times (a control byte becomes \u0001), and a dead letter Kafka refuses would stall the sink (it takes
# a failed send for an outage and retries the batch). Past it the event is replaced by the head of its bytes
# as text (JSON-escaped at most 6 x 64 KiB) with the whole value's size and hash.
MAX_DEAD_LETTER_BYTES = 512 * 1024
_HEAD_BYTES = 64 * 1024
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){12,18}(?![0-9])")


def scrub(text: str) -> str:
    """``text`` with every 13-19 digit run (single spaces or dashes allowed) that passes Luhn blanked."""
    return _DIGIT_RUN.sub(lambda m: "[redacted]" if luhn_ok(re.sub(r"[ \-]", "", m.group())) else m.group(), text)


def dead_letter(refused: Refused) -> tuple[bytes, bytes]:
    """The dead-letter record (key, value) of a refused message: where it came from, why, and the event
        (decoded when it is JSON, else its text), card-redacted; a value too large to send whole is cut to its head,
    with ``event_truncated`` giving the whole value's size and sha256."""
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
    if len(value) > MAX_DEAD_LETTER_BYTES:
        body["event"] = card_data.redact(refused.value[:_HEAD_BYTES].decode("utf-8", "replace"))
        body["event_truncated"] = {"bytes": len(refused.value), "sha256": hashlib.sha256(refused.value).hexdigest()}
        value = msgspec.json.encode(body)
    return f"{topic}/{partition}/{offset}".encode(), value


class DeadLetters:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topic = settings.topic("dead-letter")
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def send(self, refused: list[Refused]) -> None:
        """Deliver these dead letters; raises if Kafka did not acknowledge every one."""
        if not refused:
            return
        with self._lock:
            if self._producer is None:
                self._producer = Producer(producer_config(self.settings))
            failed: list = []
            for r in refused:
                key, value = dead_letter(r)
                self._producer.produce(
                    self.topic, key=key, value=value, on_delivery=lambda err, _m: err is not None and failed.append(err)
                )
            left = self._producer.flush(self.settings.delivery_timeout_ms / 1000 + 5)
            if left or failed:
                raise KafkaException(failed[0] if failed else f"{left} dead letters not delivered")
        metrics.SINK_REFUSED.inc(len(refused))

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
