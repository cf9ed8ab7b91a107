"""Kafka messages a reader cannot use (a tombstone, bytes that are not JSON, JSON that is not an object, a key
that names nothing): skipped, never the end of the reader's thread, counted per topic in a Prometheus counter
and logged at most once a minute per topic, naming where the message is and why. Shared by the API's live feed
and the notifier's intake (api/)."""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter

from livemetrics.once_per import OncePer


def why_unreadable(value: bytes | None, exc: Exception) -> str:
    """Why decoding a message's value failed, for the log line."""
    return "no value (a tombstone)" if value is None else f"{type(exc).__name__}: {exc}"


class SkippedMessages:
    def __init__(self, who: str, counter: Counter, log: logging.Logger) -> None:
        self.who, self.counter, self.log = who, counter, log
        self._name = next(iter(counter.describe())).name  # without its _total
        self._lines = OncePer(60.0, time.monotonic)

    def skip(self, msg: Any, why: str) -> None:
        """Count ``msg`` (a confluent-kafka Message) as skipped, and say so if this topic's minute is due."""
        self.counter.labels(msg.topic()).inc()
        if self._lines.due(msg.topic()):
            self.log.warning(
                "%s: skipped the message at %s[%d]@%d, %s (further ones on this topic counted in %s_total, "
                "logged once a minute)",
                self.who,
                msg.topic(),
                msg.partition(),
                msg.offset(),
                why[:200],
                self._name,
            )
