"""What a notifier group's first start commits and how a later assignment reads it back (api/notify/intake.py):
the end of every partition the topic had then, by position, so that no start depends on a clock."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from api.notify.intake import _group_start, _start_metadata


def _commit(partition: int, metadata: str = "") -> TopicPartition:
    return TopicPartition("alerts", partition, 10, metadata=metadata)


def test_a_first_starts_metadata_reads_back_as_its_time_and_every_partitions_end():
    meta = _start_metadata(1_796_000_000_000, [3, 0, 17])
    assert meta == "start=1796000000000;ends=3,0,17"
    assert _group_start([_commit(0, meta)]) == (1_796_000_000_000, [3, 0, 17])


def test_two_first_starts_give_the_lower_end_of_each_partition_and_the_earlier_time():
    """Two notifiers that both found nothing committed: the lower end loses no alert written after either."""
    got = _group_start([_commit(0, "start=9;ends=5,4"), _commit(1, "start=7;ends=6,2,8")])
    assert got == (7, [5, 2, 8])


def test_a_start_of_a_notifier_before_the_ends_is_a_time_only():
    assert _group_start([_commit(0, "start=9"), _commit(1), _commit(2, "")]) == (9, None)


def test_no_start_said_and_an_unreadable_list_counts_for_nothing():
    # a value that is not a number would shift every later partition's end: the list is not used at all
    assert _group_start([_commit(0), _commit(1, "start=9;ends=5,x,8")]) == (9, None)
    assert _group_start([_commit(0, "somebody else's metadata")]) == (None, None)


def test_a_topic_with_too_many_partitions_for_the_brokers_metadata_limit_keeps_the_time_alone():
    """Kafka refuses a commit with more than 4,096 characters of metadata (offset.metadata.max.bytes): the ends of
    1,000 partitions at ten-digit offsets would not fit, and the first start's commit would fail every time."""
    meta = _start_metadata(9, [1_234_567_890] * 1_000)
    assert meta == "start=9"
    assert _group_start([_commit(0, meta)]) == (9, None)
    fits = _start_metadata(9, [1_234_567_890] * 300)
    assert len(fits) <= 4096 and _group_start([_commit(0, fits)]) == (9, [1_234_567_890] * 300)
