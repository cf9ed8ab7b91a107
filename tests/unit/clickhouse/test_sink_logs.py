"""Where the sink resumes a partition whose stored offset does not fit the log it is assigned (sink_logs.judge)."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from clickhouse.sink_logs import BEYOND_END, EXPIRED, NEW_LOG, UNRECORDED, judge

TP = TopicPartition("t.page-events", 1)


def test_a_stored_offset_within_the_log_of_the_recorded_topic_id_is_resumed_after():
    assert judge(TP, 41, -1001, 0, 100, "id-a", "id-a") is None
    assert judge(TP, 99, 100, 0, 100, "id-a", "id-a") is None  # caught up: the next offset is the end
    assert judge(TP, 41, 42, 0, 100, None, "id-a") is None  # no id recorded yet, the group's offset: its range
    assert judge(TP, 41, -1001, 0, 100, "id-a", "id-a") is None  # stored, then stopped before the first commit
    assert judge(TP, None, -1001, 0, 100, "id-a", "id-b") is None  # nothing stored: nothing to resume after


def test_another_topic_id_is_a_new_log_read_from_its_start():
    f = judge(TP, 41, -1001, 0, 100, "id-a", "id-b")
    assert f is not None and (f.reason, f.resume, f.forgets) == (NEW_LOG, 0, True)
    assert "id-a" in f.message() and "id-b" in f.message() and "t.page-events[1]" in f.message()
    # not from the group's offset either: it may be the old log's, committed through the recreation
    assert judge(TP, 41, 7, 0, 100, "id-a", "id-b").resume == 0
    assert judge(TP, 41, 7, 3, 100, "id-a", "id-b").resume == 3  # the start is where the log starts now


def test_a_log_ending_before_the_stored_offset_is_read_from_its_start_and_the_offset_forgotten():
    f = judge(TP, 150, 151, 20, 100, None, "id-a")  # no id recorded: maybe a new log (the group's offset past it)
    assert f is not None and (f.reason, f.resume, f.forgets) == (BEYOND_END, 20, True)
    assert "Stored up to offset 150, the log holds 20 to 99 (high watermark 100)" in f.message()
    assert "truncated or is a new one" in f.message()
    assert judge(TP, 150, 40, 0, 100, None, None).resume == 0  # not the group's offset: it may lie past the cut
    assert judge(TP, 100, -1001, 0, 100, None, None).reason == BEYOND_END  # stored 100 in a log ending at 99


def test_the_same_log_ending_before_the_stored_offset_is_read_from_its_start():
    # Truncated by an unclean leader election at some offset T: new messages come from T on, so neither the end
    # nor the group's offset (it may lie past T) is safe; what is read again the event keys' filter drops.
    f = judge(TP, 150, 90, 20, 100, "id-a", "id-a")
    assert f is not None and (f.reason, f.resume, f.forgets) == (BEYOND_END, 20, True)
    assert "truncated (an unclean leader election)" in f.message()


def test_a_log_starting_after_the_stored_offset_says_what_retention_deleted_unread():
    f = judge(TP, 41, 42, 60, 100, "id-a", "id-a")
    assert f is not None and (f.reason, f.resume, f.forgets) == (EXPIRED, 60, False)
    assert "offsets 42 to 59 were deleted by the topic's retention" in f.message()
    assert judge(TP, 59, -1001, 60, 100, "id-a", "id-a") is None  # the next offset is the log's first


def test_offsets_stored_from_an_unrecorded_log_with_no_group_offset_are_read_from_the_start():
    # A topic recreated before the sink recorded topic ids, grown past the stored offset: Kafka dropped the
    # group's offsets with the old topic. (Topic ids unreadable and nothing committed: the same.)
    for topic_id in ("id-a", None):
        f = judge(TP, 41, -1001, 0, 100, None, topic_id)
        assert f is not None and (f.reason, f.resume, f.forgets) == (UNRECORDED, 0, True)
        assert "none committed by the group" in f.message() and "reading it from 0" in f.message()
