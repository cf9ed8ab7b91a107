"""The sink's dedup window outlives every raw event Kafka can still hold: a log read again from its start (a
reset, clickhouse/sink_logs.py) finds the key of each event it stored before, so none is stored twice."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from livemetrics.settings import RAW_KEPT_PAST_RETENTION_HOURS, RAW_TOPICS, Settings, _explain
from livemetrics.topics import topic_specs

HOUR_MS = 3_600_000
RETENTION_CHECK_MS = 300_000  # the broker's log.retention.check.interval.ms (Kafka's default)


def _longest_kept_ms(s: Settings) -> int:
    """The longest a raw event can stay in its topic: Kafka deletes a segment once its newest record is past
    retention.ms, checking every 5 minutes; the segment's newest record is up to segment.ms younger."""
    raw = [t for t in topic_specs(s) if t.topic in {s.topic(n) for n in RAW_TOPICS}]
    assert len(raw) == len(RAW_TOPICS)
    return max(int(t.config["retention.ms"]) + int(t.config["segment.ms"]) + RETENTION_CHECK_MS for t in raw)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"raw_retention_hours": 168, "dedup_window_hours": 170},
        {"pii_retention_hours": 100, "dedup_window_hours": 102},
    ],
)
def test_the_dedup_window_outlives_every_raw_event_kafka_keeps(fields):
    s = Settings(**fields)  # {}: the defaults
    assert s.dedup_window_hours * HOUR_MS > _longest_kept_ms(s)
    # what the settings require covers the same: the retention + the segment roll + the check
    retention_ms = max(s.raw_retention_hours, s.pii_retention_hours) * HOUR_MS
    assert retention_ms + RAW_KEPT_PAST_RETENTION_HOURS * HOUR_MS > _longest_kept_ms(s)


@pytest.mark.parametrize(
    "fields, least",
    [
        ({"dedup_window_hours": 72}, 74),
        ({"raw_retention_hours": 168}, 170),
        ({"raw_retention_hours": 10, "pii_retention_hours": 30, "dedup_window_hours": 31}, 32),
    ],
)
def test_a_window_shorter_than_what_kafka_keeps_is_refused_by_name(fields, least):
    with pytest.raises(ValidationError) as caught:
        Settings(**fields)
    text = str(_explain(caught.value))
    assert text.startswith("bad settings: dedup_window_hours"), text
    assert f"Set LIVEMETRICS_DEDUP_WINDOW_HOURS to at least {least}" in text
    Settings(**{**fields, "dedup_window_hours": least})  # the least it names is accepted
