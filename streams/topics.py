"""The topics the agents read and write (names come from settings, so tests can make them unique)."""

from __future__ import annotations

from livemetrics.settings import RAW_TOPICS
from streams.app import app, settings

raw_events = app.topic(*(settings.topic(t) for t in RAW_TOPICS), key_type=bytes, value_type=bytes)
session_ticks = app.topic(settings.topic("session-ticks"), key_type=bytes, value_type=bytes)
# Raw events and ticks share one stream so that a partition's ticks and events are processed in order.
session_input = app.topic(
    *(settings.topic(t) for t in (*RAW_TOPICS, "session-ticks")), key_type=bytes, value_type=bytes
)
live_deltas = app.topic(settings.topic("live-deltas"), key_type=bytes, value_type=bytes)
live_metrics = app.topic(settings.topic("live-metrics"), key_type=bytes, value_type=bytes)
payment_alerts = app.topic(settings.topic("payment-alerts"), key_type=bytes, value_type=bytes)
