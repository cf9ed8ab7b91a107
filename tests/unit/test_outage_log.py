"""livemetrics/outage_log.py: an outage is logged once when it begins ("lost X since T") and once when it
ends ("X back after N s"), however many retries fail in between; uses of one service under several kinds
end the outage only once every kind that failed has succeeded again (no flapping on a write-only outage)."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import Consumer

from livemetrics.outage_log import Outage, probe_kafka
from operations.ports import free_port
from tests.support.manual_clock import ManualClock

WALL = 1_796_540_000.0  # 2026-12-06T06:53:20Z


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.outage"]


def test_one_line_when_lost_and_one_when_back_whatever_the_retries(caplog):
    caplog.set_level(logging.DEBUG, logger="test.outage")
    clock = ManualClock(100.0)
    outage = Outage(logging.getLogger("test.outage"), "sink", "ClickHouse", clock=clock, wall=lambda: WALL)
    assert outage.ok() is None and not outage.down and _lines(caplog) == []  # up: nothing to say
    assert outage.failed("Code: 210. Connection refused\nmore lines")
    for _ in range(5):
        clock.now += 2
        assert not outage.failed("Code: 210. Connection refused")
    assert outage.down and outage.down_s() == 10.0
    clock.now += 2.34
    assert outage.ok() == pytest.approx(12.34)
    assert outage.ok() is None
    assert _lines(caplog) == [
        "sink: lost ClickHouse since 2026-12-06T06:53:20Z: Code: 210. Connection refused",
        "sink: ClickHouse back after 12.3 s (6 failed tries)",
    ]
    assert outage.failed("again")  # a new outage is a new pair
    assert len(_lines(caplog)) == 3


def test_an_outage_of_several_kinds_ends_when_every_failed_kind_succeeded(caplog):
    caplog.set_level(logging.DEBUG, logger="test.outage")
    clock = ManualClock(0.0)
    outage = Outage(logging.getLogger("test.outage"), "notifier", "ClickHouse", clock=clock, wall=lambda: WALL)
    outage.failed("could not record deliveries", kind="deliveries")
    outage.failed("could not record outcomes", kind="outcomes")
    clock.now += 1
    assert outage.ok(kind="pending") is None  # reads still work: not the end
    assert outage.ok(kind="deliveries") is None and outage.down
    clock.now += 1
    assert outage.ok(kind="outcomes") == 2.0 and not outage.down
    assert _lines(caplog) == [
        "notifier: lost ClickHouse since 2026-12-06T06:53:20Z: could not record deliveries",
        "notifier: ClickHouse back after 2.0 s (2 failed tries)",
    ]


def test_probe_kafka_logs_a_broker_that_does_not_answer_once(caplog):
    """A real librdkafka client at a port where nothing listens (no broker: nothing to come back)."""
    caplog.set_level(logging.DEBUG, logger="test.outage")
    outage = Outage(logging.getLogger("test.outage"), "live feed", "Kafka")
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "group.id": "unused", "log_level": 0})
    try:
        assert [probe_kafka(c, "t", outage, timeout_s=0.2) for _ in range(3)] == [False, False, False]
    finally:
        c.close()
    (line,) = _lines(caplog)
    assert line.startswith("live feed: lost Kafka since ") and "did not answer a metadata request within 0.2 s" in line
