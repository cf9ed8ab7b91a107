"""The admin clients of the topic watches (livemetrics/topic_watch.py) in a running API, on the real broker and
engine: its five watches (the live feed's three topics, seller keys, channels) ask through one librdkafka admin
client, which is let go when the API stops. Before, each watch had its own (five); kept for the process's life
instead (0dc15cb), it outlived its broker and logged failed connections to stderr (test_kafka_client_logs)."""

from __future__ import annotations

import gc
import weakref

import pytest
from confluent_kafka.admin import AdminClient

from api.main import create_api
from clickhouse.migrate import migrate
from livemetrics import topic_watch
from livemetrics.topic_watch import TopicWatch
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration


class _Counted(AdminClient):
    """The real admin client, each one made remembered while it lives."""

    alive: weakref.WeakSet[_Counted] = weakref.WeakSet()

    def __init__(self, conf):
        super().__init__(conf)
        _Counted.alive.add(self)


def _alive() -> int:
    gc.collect()  # a client dropped in a reference cycle counts as gone only once collected
    return len(_Counted.alive)


def test_a_running_apis_topic_watches_share_one_admin_client_let_go_when_it_stops(make_settings, monkeypatch):
    base = make_settings()
    # Its own admin config (the broker named twice: the same broker to librdkafka), so that a watch another test
    # of this process left open on the session's broker, sharing that config's client, counts neither way.
    s = make_settings(kafka_bootstrap=f"{base.kafka_bootstrap},{base.kafka_bootstrap}")
    migrate(s)  # the notifier's tables: the API as `up` runs it, sink aside
    monkeypatch.setattr(topic_watch, "AdminClient", _Counted)
    _Counted.alive = weakref.WeakSet()
    made: list[TopicWatch] = []
    real_init = TopicWatch.__init__

    def counting_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(TopicWatch, "__init__", counting_init)
    app = create_api(s, run_sink=False)
    server = ThreadServer(app).start()
    try:
        wait_until(lambda: app.state.feed.caught_up.is_set(), 30, what="the live feed at the end of its topics")
        assert app.state.registry.wait_ready(30) and app.state.channels.wait_ready(30)
        # every watch asked Kafka once (remember) before its reader read: all five are open and have asked
        assert sorted(w.reader for w in made) == [
            "key-registry",
            "live feed",
            "live feed",
            "live feed",
            "seller-channels",
        ]
        assert _alive() == 1, f"{_alive()} admin clients for {len(made)} topic watches"
    finally:
        server.stop()
    assert not app.state.feed._thread.is_alive() and not app.state.registry._thread.is_alive()
    # Stopped: the client is let go (librdkafka destroys it), so it tries no broker that may be gone by then.
    assert _alive() == 0
