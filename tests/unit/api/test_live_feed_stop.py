"""A live feed stopped while Kafka is away ends within its one metadata wait (2 s): it used to go on to its
three topic watches' first looks (2 s each against the broker away) after being stopped, and closed them 6-11 s
after its stop (its metadata wait was 5 s), after ``stop()`` had given up joining it (5 s). Real Kafka clients,
aimed at a closed port."""

from __future__ import annotations

import asyncio
import time

from api.live_feed import LiveFeed
from livemetrics import topic_watch
from livemetrics.settings import Settings
from operations.ports import free_port


def test_a_feed_stopped_with_kafka_away_closes_its_watches_within_its_metadata_wait(tmp_path):
    settings = Settings(dev_mode=True, kafka_bootstrap=f"127.0.0.1:{free_port()}", data_dir=tmp_path)
    loop = asyncio.new_event_loop()
    try:
        feed = LiveFeed(settings).start(loop)
        stopped = time.monotonic()
        feed.stop()
        assert feed._thread is not None
        feed._thread.join(20)
        took = time.monotonic() - stopped
    finally:
        loop.close()
    assert not feed._thread.is_alive()
    assert not [w for w in topic_watch.open_watches() if w[0] == "live feed"]
    assert took < 4.5, took  # at most one list_topics wait (2 s); before: up to 5 s of it, then 3 x 2 s of looks


def test_a_turn_of_the_feed_looks_at_one_due_watch_so_its_probe_notices_a_broker_gone_within_seconds(tmp_path):
    """The feed's three watches fall due together; with the broker just gone (not yet seen by the probe, which
    runs between turns), three looks in a row held the turn for 6-9 s, and the API said live data was delayed
    that much later (CI at c3fbaf1: test_broker_outage waits 8 s for it)."""
    settings = Settings(dev_mode=True, kafka_bootstrap=f"127.0.0.1:{free_port()}", data_dir=tmp_path)
    feed = LiveFeed(settings)
    watches = [topic_watch.TopicWatch(settings, f"t{i}", "live feed") for i in range(3)]
    try:
        started = time.monotonic()
        assert feed._follow_changes(None, watches, []) == []  # type: ignore[arg-type] - no change: no consumer asked
        took = time.monotonic() - started
        assert [w.due() for w in watches] == [False, True, True]  # the next turns look at the others
    finally:
        for w in watches:
            w.close()
    assert took < 4.5, took  # one look (2 s, its wait 3 s at most); before: three
