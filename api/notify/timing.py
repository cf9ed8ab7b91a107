"""Where an alert's time goes on its way to a webhook, as one Prometheus histogram per stage (the
notifier's ``/metrics``; ``livemetrics bench alerts`` prints them next to its end-to-end figures).

Stages of an alert's first attempt, each in seconds:

- ``to_alert``: the gateway received the event (the alert's ``at``) -> the worker wrote the alert
  (its Kafka timestamp). Only meaningful for payment failures (a spike's ``at`` is when it was found).
- ``to_notifier``: the alert's Kafka timestamp -> the notifier consumed it.
- ``record``: the notifier stored one consumed batch's pending deliveries in ClickHouse (per batch).
- ``queued``: the notifier took the delivery up -> its POST started (channel queue, send slot, DNS).
- ``post``: the POST itself, until the answer's status (any answer, or the timeout).
- ``total``: the alert's ``at`` -> the endpoint answered 2xx (first attempts that succeeded).
"""

from __future__ import annotations

from prometheus_client import Histogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.175, 0.25, 0.375, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60)
STAGE = Histogram(
    "livemetrics_notify_stage_seconds",
    "Alert delivery time per stage (api/notify/timing.py).",
    ["stage"],
    buckets=BUCKETS,
)
STAGES = ("to_alert", "to_notifier", "record", "queued", "post", "total")


def observe(stage: str, seconds: float) -> None:
    if seconds >= 0:  # clocks of two processes: a small negative difference is skew, not a duration
        STAGE.labels(stage).observe(seconds)
