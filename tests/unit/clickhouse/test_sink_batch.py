"""The sink's buffer: raw-topic messages become numbered JSON lines, alerts stay messages, offset ranges
and the deduplication token follow the messages, errors are not kept."""

from __future__ import annotations

import json

from confluent_kafka import KafkaError, Message

from clickhouse.sink_batch import Batch


def msg(topic, partition, offset, value=b'{"a":1}', error=None) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, value=value, error=error)


def test_lines_are_numbered_and_carry_the_kafka_position_and_the_value_as_is():
    b = Batch("p.payment-alerts")
    b.add([msg("p.page-events", 2, 10, b'{"x":"a,b]"}'), msg("p.checkout-events", 0, 7, b"[1, 2]")])
    b.add([msg("p.page-events", 2, 11, None)])
    lines = [h + v + b"]\n" for h, v in zip(b.heads, b.values)]
    assert [json.loads(line) for line in lines[:2]] == [
        [0, "p.page-events", 2, 10, {"x": "a,b]"}],
        [1, "p.checkout-events", 0, 7, [1, 2]],
    ]
    assert b.values[:2] == [b'{"x":"a,b]"}', b"[1, 2]"]
    assert lines[2] == b'[2,"p.page-events",2,11,]\n'  # no value: ClickHouse refuses it, the sink skips it
    assert len(b) == 3


def test_alerts_stay_messages_and_errors_are_dropped():
    b = Batch("p.payment-alerts")
    alert = msg("p.payment-alerts", 1, 4, b'{"alert_id":"a1"}')
    b.add([alert, msg("p.page-events", 0, 1), msg("p.page-events", 0, 2, error=KafkaError(KafkaError._PARTITION_EOF))])
    assert b.alerts == [alert] and len(b.heads) == len(b.values) == 1 and len(b) == 2
    assert sorted(b.ranges.items()) == [(("p.page-events", 0), [1, 1]), (("p.payment-alerts", 1), [4, 4])]


def test_ranges_commit_after_the_last_offset_of_every_partition():
    b = Batch("alerts")
    b.add([msg("t", 0, 5), msg("t", 1, 9), msg("t", 0, 6), msg("t", 0, 4)])
    assert b.ranges == {("t", 0): [4, 6], ("t", 1): [9, 9]}
    assert sorted((tp.topic, tp.partition, tp.offset) for tp in b.commit_offsets()) == [("t", 0, 7), ("t", 1, 10)]


def test_the_token_depends_on_the_offsets_and_each_partitions_first_message():
    one, again, other = Batch("alerts"), Batch("alerts"), Batch("alerts")
    one.add([msg("t", 0, 5, b"[]"), msg("t", 0, 6, b"[6]"), msg("t", 1, 9, b"{}")])
    again.add([msg("t", 1, 9, b"{}"), msg("t", 0, 6, b"[6]"), msg("t", 0, 5, b"[]")])  # redelivered in another order
    other.add([msg("t", 0, 5, b"[]"), msg("t", 0, 6, b"[6]"), msg("t", 1, 10, b"{}")])
    assert one.token() == again.token() != other.token()
    # The same offsets in another log (the topic created again): other messages, another token, else ClickHouse
    # drops the insert as a retry of the old log's batch. Only the first message of each range counts.
    new_log, later_differs = Batch("alerts"), Batch("alerts")
    new_log.add([msg("t", 0, 5, b"[5]"), msg("t", 0, 6, b"[6]"), msg("t", 1, 9, b"{}")])
    later_differs.add([msg("t", 0, 5, b"[]"), msg("t", 0, 6, b"[7]"), msg("t", 1, 9, b"{}")])
    assert new_log.token() != one.token() == later_differs.token()


def test_first_at_is_when_the_first_message_came():
    b = Batch("alerts")
    b.add([])
    b.add([msg("t", 0, 1, error=KafkaError(KafkaError._PARTITION_EOF))])
    assert b.first_at == 0.0 and len(b) == 0
    b.add([msg("t", 0, 1)])
    first = b.first_at
    assert first > 0
    b.add([msg("t", 0, 2)])
    assert b.first_at == first
