"""One line when a process loses a service it needs (Kafka, ClickHouse) and one when it has it back, not a
line per retry: ``lost ClickHouse since 2026-12-06T06:31:02Z: <why>`` at the first failure, then
``ClickHouse back after 12.3 s (7 failed tries)`` at the first success after it. Operators grep for both
(docs/operations.md, Outages in the logs); the retries in between are counted, not logged here (callers log
them at debug when ``failed`` returns False).

Used by the sink (ClickHouse inserts, Kafka commits), the API's live feed (the broker's metadata probe), the
notifier (recording and reading deliveries in ClickHouse) and the gateway (``producers/gateway/delivery.py``:
its first 503 for want of the broker, its first acknowledgement after them). Thread-safe: a service's failures and
successes may be seen on different threads.

Several kinds of use of one service (the notifier records deliveries, records outcomes and reads pending
ones) share one ``Outage``, each failing and succeeding under its own ``kind``: the outage ends when every
kind that failed has succeeded again, so reads that still work during a write-only outage (a full disk)
neither end it nor make it flap. ``probe_kafka`` is the check the Kafka consumers make once a second: a
metadata request (an idle consumer would otherwise notice neither the loss nor the return)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Outage:
    """The state of one service as one process sees it: up, or lost since a moment."""

    def __init__(
        self,
        logger: logging.Logger,
        service: str,
        what: str,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ):
        self.log, self.service, self.what = logger, service, what
        self._clock, self._wall = clock, wall
        self._since: float | None = None  # clock() of the first failure; None: up
        self._tries = 0
        self._failing: set[str] = set()  # the kinds failing in the outage going on
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self._since is not None

    def down_s(self) -> float | None:
        """Seconds since the first failure of the outage going on; None when up."""
        since = self._since
        return None if since is None else max(0.0, self._clock() - since)

    def failed(self, why: object = "", exc_info: BaseException | None = None, kind: str = "") -> bool:
        """A try failed; the first of an outage is logged (True), later ones only counted."""
        with self._lock:
            self._tries += 1
            self._failing.add(kind)
            if self._since is not None:
                return False
            self._since = self._clock()
        text = str(why).strip().splitlines()[0][:300] if str(why).strip() else type(why).__name__
        self.log.warning(
            "%s: lost %s since %s: %s",
            self.service,
            self.what,
            _utc(self._wall()),
            text,
            exc_info=exc_info,
            extra={"outage_of": self.what},
        )
        return True

    def ok(self, kind: str = "") -> float | None:
        """A try succeeded: the end of an outage (every kind that failed has succeeded since) is logged and its
        length returned; None when no outage ended."""
        if self._since is None:  # the common case, without the lock
            return None
        with self._lock:
            self._failing.discard(kind)
            if self._failing:
                return None
            since, tries = self._since, self._tries
            self._since, self._tries = None, 0
        if since is None:
            return None
        lasted = max(0.0, self._clock() - since)
        self.log.warning(
            "%s: %s back after %.1f s (%d failed tries)",
            self.service,
            self.what,
            lasted,
            tries,
            extra={"outage_of": self.what, "outage_s": round(lasted, 1)},
        )
        return lasted


def probe_kafka(client: Any, topic: str, outage: Outage, timeout_s: float = 1.0) -> bool:
    """Ask the broker for ``topic``'s metadata (a consumer's or producer's ``list_topics``): the outage's
    first failure and its end are logged (``outage``); True when the broker answered."""
    try:
        client.list_topics(topic, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - any failure means the broker did not answer
        outage.failed(f"the broker did not answer a metadata request within {timeout_s:g} s: {exc}", kind="probe")
        return False
    outage.ok(kind="probe")
    return True
