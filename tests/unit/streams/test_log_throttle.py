"""Repeated library log lines pass once per interval, with a count of what was held back (docs/operations.md: a
worker logged ~100 aiokafka lines a second while the broker was down)."""

import logging

from streams.log_throttle import RepeatFilter, install


def record(msg: str, name: str = "aiokafka.conn", level: int = logging.ERROR, args=()) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_line_of_a_kind_per_interval_then_the_count():
    now = [0.0]
    f = RepeatFilter(10.0, clock=lambda: now[0])
    passed = []
    for i in range(100):  # 100 lines a second for 25 s
        now[0] = i * 0.25
        r = record("Unable connect to node with id %s: %s", args=(1, "refused"))
        if f.filter(r):
            passed.append((now[0], r.getMessage()))
    assert [t for t, _ in passed] == [0.0, 10.0, 20.0]
    assert passed[0][1] == "Unable connect to node with id 1: refused"
    assert passed[1][1] == "Unable connect to node with id 1: refused (39 more like this in the last 10 s)"


def test_kinds_are_apart_by_logger_level_and_format():
    f = RepeatFilter(10.0, clock=lambda: 0.0)
    assert f.filter(record("a %s", args=(1,)))
    assert not f.filter(record("a %s", args=(2,)))  # same format string: same kind
    assert f.filter(record("b"))
    assert f.filter(record("a %s", name="aiokafka.client", args=(1,)))
    assert f.filter(record("a %s", level=logging.WARNING, args=(1,)))


def test_install_reaches_the_loggers_of_every_module_of_the_package():
    assert install(("aiokafka",)) > 5
    for name in (
        "aiokafka",
        "aiokafka.conn",
        "aiokafka.consumer.fetcher",
        "aiokafka.consumer.group_coordinator",
        "aiokafka.producer.sender",
    ):
        assert any(isinstance(f, RepeatFilter) for f in logging.getLogger(name).filters), name
