"""The Faust app: ``create_app`` builds one from settings; ``build_worker`` builds the worker's and
registers its topics, tables and agents on it.

Nothing is built at import. The topics, tables and agents modules (``streams/topics.py``,
``streams/tables.py``, ``streams/agents/``) register on the worker's app when they are imported, which
``build_worker`` does after building it; they read it here as ``app`` and ``settings`` (importing them
before ``build_worker`` is an error that says so). So one process runs one worker: a second
``build_worker`` with other settings raises. ``create_app`` has no such limit (tests build apps of
their own with it)."""

from __future__ import annotations

import logging
from typing import Any

import faust

from livemetrics.kafka_config import faust_broker_credentials, faust_broker_url
from livemetrics.settings import Settings
from streams import log_throttle

_worker: dict[str, Any] = {}  # "app" and "settings" of the worker, once built


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings``, with no topics, tables or agents."""
    return faust.App(
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


def quiet_client_logs() -> None:
    """The client libraries build a debug record for every message sent; the worker never shows them.
    While the broker is away aiokafka logs each failed connection, fetch and heartbeat (~100 lines/s):
    one line of each kind per 10 s says the same (streams/log_throttle.py).

    Faust's table recovery keeps INFO: a few lines per rebalance (each changelog partition's high water
    mark and the offset reading starts at, then "Done reading") and a progress table every 5 s while it
    reads. A recovery that never ends (a CI run: "No event received for active tp ... since recovery
    start", and nothing else to go on) is diagnosed from exactly these lines."""
    for name in ("aiokafka", "faust", "mode"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("faust.tables.recovery").setLevel(logging.INFO)
    log_throttle.install(("aiokafka",))


def build_worker(settings: Settings) -> faust.App:
    """The worker's app for ``settings``, with every topic, table and agent registered on it; built once
    per process (the same settings again return it)."""
    built = _worker.get("settings")
    if built is not None:
        if built != settings:
            raise RuntimeError("this process already built its worker with other settings (one worker per process)")
        app: faust.App = _worker["app"]
        return app
    _worker.update(app=create_app(settings), settings=settings)
    quiet_client_logs()
    import streams.agents.gauges  # noqa: F401 - each agent module registers on the app when imported
    import streams.agents.session_timers  # noqa: F401
    import streams.agents.sessions  # noqa: F401
    import streams.agents.traffic_watch  # noqa: F401

    built_app: faust.App = _worker["app"]
    return built_app


def __getattr__(name: str) -> Any:
    """``app`` and ``settings`` of the worker, for the modules that register on it."""
    if name in ("app", "settings"):
        try:
            return _worker[name]
        except KeyError:
            raise RuntimeError(
                f"streams.app.{name} is read before streams.app.build_worker(settings) built the worker"
            ) from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
