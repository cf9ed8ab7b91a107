"""Unusable Kafka messages: each counted, a line per topic a minute (livemetrics/skipped_messages.py)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter

from livemetrics.skipped_messages import SkippedMessages, why_unreadable


class Msg:
    def __init__(self, topic: str, offset: int) -> None:
        self._topic, self._offset = topic, offset

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return self._offset


def test_every_skip_is_counted_and_each_topic_said_once_a_minute(caplog):
    counter = Counter("test_skipped", "skipped", ["topic"], registry=CollectorRegistry())
    skipped = SkippedMessages("reader", counter, logging.getLogger("test.skipped"))
    with caplog.at_level(logging.WARNING, "test.skipped"):
        for i in range(5):
            skipped.skip(Msg("a", i), "no value (a tombstone)")
        skipped.skip(Msg("b", 9), "x" * 500)
    assert counter.labels("a")._value.get() == 5 and counter.labels("b")._value.get() == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("reader: skipped the message at a[2]@0, no value (a tombstone)")
    assert "counted in test_skipped_total" in lines[0]
    assert "x" * 200 in lines[1] and "x" * 201 not in lines[1]  # the reason cut


def test_why_names_a_tombstone_or_the_error():
    assert why_unreadable(None, TypeError("no bytes")) == "no value (a tombstone)"
    assert why_unreadable(b"{", ValueError("truncated")) == "ValueError: truncated"
