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
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){12,18}(?![0-9])")


def scrub(text: str) -> str:
    """``text`` with every 13-19 digit run (single spaces or dashes allowed) that passes Luhn blanked."""
    return _DIGIT_RUN.sub(lambda m: "[redacted]" if luhn_ok(re.sub(r"[ \-]", "", m.group())) else m.group(), text)


def dead_letter(refused: Refused) -> tuple[bytes, bytes]:
    """The dead-letter record (key, value) of a refused message: where it came from, why, and the event
    (decoded when it is JSON, else its text), card-redacted."""
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
    return f"{topic}/{partition}/{offset}".encode(), msgspec.json.encode(body)


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
