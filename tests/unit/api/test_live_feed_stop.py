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
