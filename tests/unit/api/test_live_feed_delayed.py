"""While the broker cannot be reached, every snapshot the API serves says that live data is delayed, and
each dashboard gets its snapshot again when that starts and when it ends (docs/operations.md)."""

import asyncio

from api.live_feed import LiveFeed
from livemetrics.settings import Settings


def test_delayed_is_stamped_on_every_snapshot_and_pushed_to_subscribers():
    async def run():
        feed = LiveFeed(Settings())
        feed._deliver("snapshot", "s1", {"seller_id": "s1", "active_sessions": 3})
        feed._deliver("snapshot", "s2", {"seller_id": "s2", "active_sessions": 1})
        sub = feed.subscribe("s1")
        seen = [feed.latest["s1"]["delayed"]]
        feed._set_delayed(True)
        seen += [
            feed.latest["s1"]["delayed"],
            feed.latest["s2"]["delayed"],
            sub.snapshot[0]["delayed"],
            '"delayed":true' in sub.snapshot[1],
            feed.delayed_since is not None,
        ]
        sub.snapshot = None
        feed._set_delayed(True)  # no change: nothing pushed again
        seen.append(sub.snapshot)
        feed._set_delayed(False)
        seen += [feed.latest["s1"]["delayed"], sub.snapshot[0]["delayed"], feed.latest["s1"]["active_sessions"]]
        feed._deliver("snapshot", "s1", {"seller_id": "s1", "active_sessions": 4})
        seen.append(feed.latest["s1"])
        return seen

    assert asyncio.run(run()) == [
        False,
        True,
        True,
        True,
        True,
        True,
        None,
        False,
        False,
        3,
        {"seller_id": "s1", "active_sessions": 4, "delayed": False},
    ]
