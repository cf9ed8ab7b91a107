"""The compacted topics' readers (livemetrics/compacted.py) and what their consumer cannot see
(livemetrics/topic_watch.py), on the real broker: a topic created again whose new log grew past the reader's
position before the reader fetched from it, and partitions added to the topic. Both are read within
``reader_topic_check_s``."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from livemetrics import compacted, keys, metrics
from livemetrics.kafka_config import admin_config
from livemetrics.topics import create_topics
from tests.support.servers import wait_until
from tests.support.topic_changes import add_partitions, watched

pytestmark = pytest.mark.integration


class _Captured(Consumer):
    """The real consumer, whose fetches the test can hold while the topic changes: the reader's own thread pauses
    and resumes its partitions at its next poll when asked (librdkafka's calls from another thread hung here)."""

    made: list[_Captured] = []

    def __init__(self, conf):
        super().__init__(conf)
        self.want: str = ""  # "pause" or "resume", done at the next poll
        self.done = threading.Event()
        _Captured.made.append(self)

    def poll(self, timeout=None):
        if self.want:
            (self.pause if self.want == "pause" else self.resume)(self.assignment())
            self.want = ""
            self.done.set()
        return super().poll(timeout)

    def ask(self, what: str) -> None:
        self.done.clear()
        self.want = what
        assert self.done.wait(10), f"the reader's thread did not {what} its partitions"


def _changes(reader: str, topic: str, change: str) -> float:
    return metrics.TOPIC_CHANGES.labels(reader, topic, change)._value.get()


def test_a_new_log_grown_past_the_readers_position_is_read_from_its_start(make_settings, monkeypatch):
    settings = make_settings(reader_topic_check_s=1.0)
    topic = settings.topic("seller-keys")
    monkeypatch.setattr(compacted, "Consumer", _Captured)
    _Captured.made.clear()
    # Kept alive to the end: librdkafka can abort when an admin client is closed mid-request (#3663).
    admin = AdminClient(admin_config(settings))
    registry = keys.KeyRegistry(settings).start()
    try:
        assert registry.ready
        old = [keys.new_key("pk", "shop-a")[1] for _ in range(10)]
        keys.publish_all(settings, old)
        assert registry.wait_for(old[-1].key_id, 30)
        (consumer,) = _Captured.made
        consumer.ask("pause")  # no fetch until the new log is longer than the old one
        # Read before the delete: the watch runs on the paused reader's thread and may see the new log at once.
        before = _changes("key-registry", topic, "recreated")
        for fut in admin.delete_topics([topic], operation_timeout=30).values():
            fut.result()
        wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, 60, what="deleted")
        create_topics(settings)
        browser, first = keys.new_key("pk", "shop-b")
        later = [keys.new_key("pk", "shop-c")[1] for _ in range(15)]
        keys.publish_all(settings, [first, *later])  # 16 records: past the reader's position (10)
        consumer.ask("resume")
        assert registry.wait_for(later[-1].key_id, 60)  # read from offset 10 on, at least
        # The new log's first record, below the position the reader resumed at: before, never read until a restart.
        assert registry.wait_for(first.key_id, 30), "the new log's records below the reader's position were lost"
        assert registry.authenticate(browser, ("browser",)) == first
        assert _changes("key-registry", topic, "recreated") == before + 1
        assert registry._thread is not None and registry._thread.is_alive()
    finally:
        registry.stop()


def test_partitions_added_to_a_topic_are_read_without_a_restart(make_settings):
    settings, admin = watched(make_settings)  # admin: kept alive to the end
    topic = settings.topic("seller-keys")
    registry = keys.KeyRegistry(settings).start()
    try:
        assert registry.ready
        # Read before the change: the watch (every second) may see the new partitions at once.
        before = _changes("key-registry", topic, "partitions_added")
        add_partitions(admin, topic, 3)
        # Records placed by key (librdkafka's partitioner, not ours to compute): 30 of them, so that each of the
        # 3 partitions gets some (none on a new one: a chance of ~2 x (2/3)^30, 1e-5).
        recs = [keys.new_key("pk", f"shop-{i}")[1] for i in range(30)]
        keys.publish_all(settings, recs)
        for rec in recs:
            assert registry.wait_for(rec.key_id, 30), f"key {rec.key_id} on a new partition never read"
        assert _changes("key-registry", topic, "partitions_added") == before + 1
    finally:
        registry.stop()
