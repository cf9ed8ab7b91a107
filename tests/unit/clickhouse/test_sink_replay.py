"""Which recorded batches an assignment stores again (clickhouse/sink_replay.unstored)."""

from __future__ import annotations

from clickhouse.sink_replay import unstored

TOPICS = ["page-events", "payment-alerts"]


def test_the_batch_after_what_is_stored_and_not_counted_is_stored_again():
    recorded = [("t1", [["page-events", 0, 0, 9]]), ("t2", [["page-events", 0, 10, 19], ["page-events", 1, 0, 4]])]
    assert unstored(recorded, TOPICS, {("page-events", 0): 9}) == [
        ("t2", [("page-events", 0, 10, 19), ("page-events", 1, 0, 4)])
    ]


def test_a_batch_counted_in_full_is_not():
    recorded = [("t1", [["page-events", 0, 0, 9], ["payment-alerts", 0, 3, 3]])]
    assert unstored(recorded, TOPICS, {("page-events", 0): 9, ("payment-alerts", 0): 3}) == []


def test_a_batch_that_does_not_start_right_after_what_is_stored_is_not():
    # a gap: offsets 10-14 are not stored, so this batch was not the one in flight after the stored ones
    assert unstored([("t3", [["page-events", 0, 15, 19]])], TOPICS, {("page-events", 0): 9}) == []
    # one of its partitions already past its start (another batch stored there after it)
    recorded = [("t4", [["page-events", 0, 10, 19], ["page-events", 1, 0, 4]])]
    assert unstored(recorded, TOPICS, {("page-events", 0): 9, ("page-events", 1): 2}) == []


def test_a_partition_with_nothing_stored_counts_from_its_start():
    assert unstored([("t5", [["page-events", 2, 0, 7]])], TOPICS, {}) == [("t5", [("page-events", 2, 0, 7)])]
    assert unstored([("t6", [["page-events", 2, 5, 7]])], TOPICS, {}) == []


def test_other_topics_and_repeated_tries_are_left_out():
    recorded = [
        ("t7", [["other-topic", 0, 0, 1]]),
        ("t8", [["page-events", 0, 0, 1]]),
        ("t8", [["page-events", 0, 0, 1]]),
    ]
    assert unstored(recorded, TOPICS, {}) == [("t8", [("page-events", 0, 0, 1)])]
