"""The admin client the topic watches of a process share (livemetrics/topic_watch.py), on a real broker, where it
is let go while other watches use it: librdkafka can abort the process when an admin client is destroyed with a
request of it in flight (confluentinc/librdkafka#3663), so no client is destroyed while a watch waits on it.

- A watch whose look gets no answer in time parks the shared client (kept for the process's life) while another
  watch's request on it is still in flight: that request is answered through the parked client, and every watch's
  next look goes through a new client and sees the topic's change.
- A watch opened while the last one is closing (librdkafka destroying the client it let go): the new watch gets a
  client of its own at once (not the one being destroyed, and without waiting for the destruction) and sees the
  topic's change."""

from __future__ import annotations

import gc
import os
import signal
import threading
import weakref

import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient

from livemetrics import topic_watch
from livemetrics.kafka_config import admin_config
from livemetrics.topic_watch import TopicWatch
from tests.support.servers import wait_until
from tests.support.services import local_kafka
from tests.support.stack import module_settings
from tests.support.stopped_group import stop_group
from tests.support.topic_changes import add_partitions

pytestmark = pytest.mark.integration


class _Asked(AdminClient):
    """The real admin client; says when a describe request was sent, and can ask with a longer request timeout
    than the watch's wait (so that the watch gives up on a request librdkafka still holds: a late answer)."""

    request_timeout_s: float | None = None
    made: list[weakref.ref[_Asked]] = []

    def __init__(self, conf):
        super().__init__(conf)
        self.asked = threading.Event()
        _Asked.made.append(weakref.ref(self))

    def describe_topics(self, topics, **kwargs):
        if _Asked.request_timeout_s is not None:
            kwargs["request_timeout"] = _Asked.request_timeout_s
        futures = super().describe_topics(topics, **kwargs)
        self.asked.set()
        return futures


def _shared(watch: TopicWatch) -> AdminClient | None:
    return topic_watch._SHARED.get(watch._key)


def _partitions(admin: AdminClient, topic: str) -> int:
    return len(admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=10).partitions)


@pytest.mark.timeout(240)
def test_a_watch_parking_the_shared_client_leaves_another_watchs_request_on_it_answered(
    tmp_path, clickhouse_dsn, monkeypatch
):
    monkeypatch.setattr(topic_watch, "AdminClient", _Asked)
    _Asked.made = []
    with local_kafka(tmp_path / "kafka") as (bootstrap, broker):  # its own broker: the test stops it (SIGSTOP)
        s = module_settings(bootstrap, clickhouse_dsn, tmp_path)
        topic = s.topic("seller-keys")
        admin = AdminClient(admin_config(s))  # the test's own, kept alive to the end (#3663)
        watches = [TopicWatch(s, topic, f"reader-{i}", period_s=0) for i in range(3)]
        stopped = None
        try:
            for w in watches:
                w.remember(list(range(s.partitions)))
            first = _shared(watches[0])
            assert isinstance(first, _Asked) and all(_shared(w) is first for w in watches)  # one client for all
            add_partitions(admin, topic, s.partitions + 1)
            wait_until(lambda: _partitions(admin, topic) == s.partitions + 1, 30, what="the new partition described")
            # Nothing answers on the broker's port now (connections stay open): requests stay in flight, and the
            # client asks with a request timeout longer than the watches wait.
            _Asked.request_timeout_s = 120
            stopped = broker.pid()
            assert stopped is not None
            stop_group(stopped)  # returns once every broker thread is stopped, not only signalled
            answered: dict[str, object] = {}
            first.asked.clear()
            waiting = threading.Thread(target=lambda: answered.update(change=watches[1].look(timeout_s=60)))
            waiting.start()
            assert first.asked.wait(10), "reader-1 did not ask"
            # reader-0 gives up on its own request (in flight too) after its wait: the client is parked, not let go
            assert watches[0].look(timeout_s=1) is None
            assert first in topic_watch._PARKED and _shared(watches[0]) is None
            os.killpg(stopped, signal.SIGCONT)
            stopped = None
            _Asked.request_timeout_s = None
            waiting.join(60)
            assert not waiting.is_alive()
            # reader-1's request, in flight on the parked client, was answered through it
            change = answered["change"]
            assert isinstance(change, topic_watch.Change) and change.added == [s.partitions], change
            # the others ask through a new client, and see the new partition
            for w in (watches[0], watches[2]):
                change = w.look(timeout_s=10)
                assert change is not None and change.added == [s.partitions], (w.reader, change)
            second = _shared(watches[0])
            assert second is not None and second is not first
        finally:
            if stopped is not None:
                os.killpg(stopped, signal.SIGCONT)
            _Asked.request_timeout_s = None
            for w in watches:
                w.close()
        del first, second
        gc.collect()
        # The parked client lives on (the process's life), the one made after it is let go with the last watch.
        alive = [ref() for ref in _Asked.made]
        assert len(alive) == 2 and alive[0] is not None and alive[0] in topic_watch._PARKED and alive[1] is None


class _SlowlyGone(_Asked):
    """A client whose destruction (librdkafka's, when its last reference goes) takes until the test says."""

    going = threading.Event()  # the destruction began
    may_go = threading.Event()  # the test let it finish
    waited: list[bool] = []

    def __del__(self):
        _SlowlyGone.going.set()
        _SlowlyGone.waited.append(_SlowlyGone.may_go.wait(20))


@pytest.mark.timeout(120)
def test_a_watch_opened_while_the_last_one_is_closing_gets_a_client_of_its_own(make_settings, monkeypatch):
    s = make_settings()
    topic = s.topic("seller-keys")
    admin = AdminClient(admin_config(s))  # the test's own, kept alive to the end (#3663)
    monkeypatch.setattr(topic_watch, "AdminClient", _SlowlyGone)
    _SlowlyGone.waited = []
    _SlowlyGone.going.clear()
    _SlowlyGone.may_go.clear()
    last = TopicWatch(s, topic, "closing", period_s=0)
    opened: TopicWatch | None = None
    closing = threading.Thread(target=last.close)
    try:
        last.remember(list(range(s.partitions)))
        dying = id(_shared(last))  # not reused: the object lives until its destruction, held up below, ends
        closing.start()  # the last watch of this admin config: its client is let go and destroyed
        assert _SlowlyGone.going.wait(10), "the client was not let go"
        # While librdkafka destroys it (the closing thread holds no lock then), a reader opens a watch.
        opened = TopicWatch(s, topic, "opening", period_s=0)
        opened.remember(list(range(s.partitions)))
        own = _shared(opened)
        assert own is not None and id(own) != dying, "the new watch was lent the client being destroyed"
        add_partitions(admin, topic, s.partitions + 1)
        wait_until(lambda: _partitions(admin, topic) == s.partitions + 1, 30, what="the new partition described")
        change = opened.look(timeout_s=10)
        assert change is not None and change.added == [s.partitions], change
    finally:
        _SlowlyGone.may_go.set()
        closing.join(30)
        if opened is not None:
            opened.close()
    assert not closing.is_alive()
    # The closing thread's destruction waited for the new watch, which was opened meanwhile: not held up by it.
    assert _SlowlyGone.waited[:1] == [True], _SlowlyGone.waited
    assert _shared(last) is None  # both closed: nothing of this admin config kept
