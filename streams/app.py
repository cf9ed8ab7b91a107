"""The Faust app. Topics, tables and agents register themselves on it when their modules import."""

from __future__ import annotations

import logging

import faust

from livemetrics.kafka_config import faust_broker_credentials, faust_broker_url
from livemetrics.settings import get_settings
from streams import log_throttle

settings = get_settings()

app = faust.App(
    settings.app_id,
    broker=faust_broker_url(settings),
    broker_credentials=faust_broker_credentials(settings),  # None: plaintext (docs/security.md, Kafka)
    store=settings.store,
    datadir=str(settings.data_dir.resolve() / "faust"),
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    topic_allow_declare=True,
    # At-least-once: every table update is idempotent (see streams.state), so redelivery is harmless.
    processing_guarantee="at_least_once",
    consumer_auto_offset_reset="earliest",
    table_standby_replicas=0,
    broker_commit_interval=1.0,
    # Changelog writes (one per session per batch) go out in batches instead of one request each.
    producer_linger=0.005,
    # A SIGKILLed worker's partitions move to the others after this; Faust's default is 60 s.
    broker_session_timeout=settings.worker_session_timeout_s,
    broker_heartbeat_interval=max(0.5, settings.worker_session_timeout_s / 4),
    # Faust's own producer (live deltas, snapshots, alerts, ticks, the gauges' changelog) holds a batch
    # through a broker outage up to the tolerance rather than expiring it (a dropped delta or snapshot).
    producer_request_timeout=settings.broker_outage_tolerance_s,
    web_enabled=False,
    autodiscover=False,
    key_serializer="raw",
    value_serializer="raw",
)


# The client libraries build a debug record for every message sent; the worker never shows them.
for _name in ("aiokafka", "faust", "mode"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# While the broker is away aiokafka logs each failed connection, fetch and heartbeat (~100 lines/s):
# one line of each kind per 10 s says the same (streams/log_throttle.py).
log_throttle.install(("aiokafka",))


def load_agents() -> faust.App:
    """Import every agent module so that it registers on ``app``; return the app."""
    import streams.agents.gauges  # noqa: F401
    import streams.agents.session_timers  # noqa: F401
    import streams.agents.sessions  # noqa: F401
    import streams.agents.traffic_watch  # noqa: F401

    return app
