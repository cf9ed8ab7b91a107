"""A seller with no snapshot yet gets all zeros with the windows the settings say (recent_window_s too)."""

import threading
from types import SimpleNamespace

from api.routes.live import current_snapshot
from livemetrics.settings import Settings


def test_the_empty_snapshot_names_the_configured_windows():
    feed = SimpleNamespace(latest={}, caught_up=threading.Event())
    s = Settings(live_window_s=120, session_timeout_s=900, recent_window_s=600)
    snap = current_snapshot(feed, s, "new-shop")
    assert snap["recovering"] is True  # the feed has not read its topics to the end yet
    assert (snap["window_s"], snap["session_timeout_s"]) == (120, 900)
    assert snap["windows"]["purchased_30m"] == "last 600 s" and snap["active_sessions"] == 0
