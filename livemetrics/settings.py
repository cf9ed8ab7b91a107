"""The one settings class. Read once (``get_settings()``); every process takes its config from here.

Every field can be set through the environment with the ``LIVEMETRICS_`` prefix, e.g.
``LIVEMETRICS_KAFKA_BOOTSTRAP=broker:9092``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RAW_TOPICS = ("page-events", "checkout-events", "payment-events")
# Every topic of docs/architecture.md (Topics) plus the internal ones the stream processors need.
ALL_TOPICS = RAW_TOPICS + (
    "dead-letter",
    "payment-alerts",
    "live-metrics",
    "seller-keys",
    "session-ticks",
    "live-deltas",
    "erasures",  # `livemetrics erase` tells every running API process to drop the customer's alerts
    "ip-salts",  # each UTC day's random IP-hash salt, shared by the gateways, removed after the day
    "seller-channels",  # each seller's notification channels (webhooks, emails): api/notify/channels.py
)
COMPACTED_TOPICS = ("live-metrics", "seller-keys", "seller-channels")
# Faust tables; their changelog topics are `<app_id>-<name>-changelog`.
TABLE_NAMES = ("sessions", "gauges", "minute-rates")
# Windowed tables: seconds a window is kept (the table's ``expires`` and its changelog's retention).
WINDOWED_TABLE_EXPIRES_S = {"minute-rates": 3900}
# How long past its topic's retention Kafka can still hold a raw event: it deletes a whole segment once the
# segment's newest record is past retention.ms, segments roll hourly (segment.ms, livemetrics/topics.py), the
# broker checks every 5 minutes (log.retention.check.interval.ms), and the rest covers record timestamps (the
# gateway's clock) ahead of the broker's. The sink reads a log again from its start at a reset
# (clickhouse/sink_logs.py) and relies on the event keys to drop what it stored before: they must outlive this.
RAW_KEPT_PAST_RETENTION_HOURS = 2


class Settings(BaseSettings):
    # ./.env (what `livemetrics secrets init` writes) is read too; the environment wins over it.
    model_config = SettingsConfigDict(env_prefix="LIVEMETRICS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".livemetrics"), description="Where local state lives (broker, chdb, RocksDB).")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "livemetrics", description="Downloads that survive a clean checkout."
    )

    # --- Kafka -----------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    kafka_version: str = "4.0.1"
    kafka_heap: str = "512m"
    kafka_jvm_options: str = Field(
        "-XX:+UseSerialGC",
        description="JVM options of the local broker (`livemetrics kafka start`, `up`, benchmarks): the serial "
        "collector suits a small heap on a machine shared with the whole stack. Warm, C2 costs the broker ~20 % "
        "less CPU than C1 alone; in its first minute C1 alone ('-XX:TieredStopAtLevel=1', what the tests use) costs "
        "about half (docs/architecture.md, Broker CPU).",
    )
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # Secure mode (docs/security.md, Kafka): SASL_PLAINTEXT + SCRAM-SHA-512, one principal per role, ACLs.
    kafka_security: Literal["plaintext", "sasl"] = Field(
        "plaintext",
        description="sasl: every client logs in as the principal of kafka_role (SCRAM-SHA-512) and "
        "the local broker (`kafka start`) requires it and applies the ACLs; plaintext: the kafka_sasl_* fields above.",
    )
    kafka_role: Literal["admin", "gateway", "worker", "api"] = Field(
        "admin", description="The Kafka principal this process logs in as in sasl mode (compose sets one per service)."
    )
    kafka_admin_password: SecretStr = Field(SecretStr(""), description="Super user: topics, ACLs, writes seller-keys.")
    kafka_gateway_password: SecretStr = SecretStr("")
    kafka_worker_password: SecretStr = SecretStr("")
    kafka_api_password: SecretStr = SecretStr("")
    topic_prefix: str = Field("", description="Prepended to every topic name (tests use a unique one).")
    partitions: int = 3
    replication_factor: int = Field(1, ge=1, description="Replicas of every topic (3 on a 3-broker cluster).")
    min_insync_replicas: int = Field(
        1,
        ge=1,
        description="Replicas that must have an event before the gateway answers 202 (topic "
        "min.insync.replicas; 2 on a 3-broker cluster: one broker may be down, two down means 503).",
    )
    kafka_cluster_heap: str = Field("384m", description="Heap of each node of `kafka start --brokers N`.")
    raw_retention_hours: int = 72
    pii_retention_hours: int = 24
    delivery_timeout_ms: int = 5000
    reader_topic_check_s: float = Field(
        30.0,
        gt=0,
        description="How often the readers without a group (seller keys, notification channels, the API's live "
        "feed, the gateway's ip-salts) ask Kafka for their topic's id and partitions: a topic created again, or "
        "given more partitions, is read from its start within this (livemetrics/topic_watch.py).",
    )
    consumer_session_timeout_s: float = Field(
        10.0,
        ge=6,
        description="Group session timeout of the confluent-kafka group consumers (the sink): how soon "
        "a SIGKILLed member's partitions move on, and how long a member restarted after one waits for them "
        "(librdkafka's default is 45 s). At least the broker's group.min.session.timeout.ms (6 s).",
    )
    broker_outage_tolerance_s: float = Field(
        300.0,
        gt=0,
        description="How long the worker, sink and live feed wait out an unreachable broker "
        "(the worker's own writes are held, never dropped, this long; past it the worker exits and says why).",
    )

    # --- ClickHouse --------------------------------------------------------------------------
    clickhouse_dsn: str = Field("", description="chdb:///path (embedded) or http(s)://user:pass@host:port")
    clickhouse_database: str = "livemetrics"
    event_ttl_days: int = 400
    pii_ttl_days: int = 30
    dedup_window_hours: int = Field(
        74,
        ge=1,
        description="How long ClickHouse remembers a stored (seller, event_id), so that a copy "
        "(a storefront's retry after a 503, a raw topic read again from its start) is not stored again. At least "
        f"the raw topics' retention + {RAW_KEPT_PAST_RETENTION_HOURS} h (what Kafka can still hold, segments "
        "rolling hourly): a smaller window is refused.",
    )
    sink_batch_rows: int = 50_000
    sink_batch_seconds: float = Field(
        2.0,
        gt=0,
        description="The sink stores what it consumed at least this often (or every sink_batch_rows rows): "
        "history and reports lag live traffic by up to this. Each batch costs ClickHouse ~0.1 CPU s whatever "
        "its size (a part per table, the views, merges): 2 s instead of 1 s cut the API-with-sink's CPU per "
        "event ~20 % at 10,000 events/s (BENCHMARKS.md).",
    )
    sink_group: str = "livemetrics-sink"
    sink_ops_port: int = Field(
        8003, ge=0, description="The standalone sink's (`livemetrics sink`) /healthz, /readyz and /metrics (0: off)."
    )
    sink_stall_s: float = Field(
        60.0, gt=0, description="The sink is degraded (/readyz 503) when it has a lag and stored nothing this long."
    )
    embedded_sink: bool = Field(True, description="Run the sink inside the API process when ClickHouse is chdb.")
    session_fold_interval_s: float = Field(
        30.0, description="How often the sink's process folds new session rows into session_sums (0: never)."
    )
    session_fold_grace_s: int = Field(
        60, description="A fold takes only session rows inserted at least this long ago (every insert has finished)."
    )
    session_states_in_memory: bool = Field(
        True,
        description="Keep every folded session's state in memory too (the ClickHouse Join table session_folded_join, "
        "~170 bytes a session within event_ttl_days, in the process that holds ClickHouse), where the session reports "
        "look up the sessions changed since the fold's watermark; false: the fold keeps it empty and the reports pass "
        "over the seller's session_folded rows instead (the same figures, slower with many unfolded rows).",
    )

    # --- Live semantics (docs/live-semantics.md) ------------------------------------------------------------
    live_window_s: int = 300
    session_timeout_s: int = 1800
    session_cache_entries: int = Field(
        250_000,
        ge=0,
        description="Session states a worker keeps in memory in front of RocksDB (least recently used go "
        "first; 0: none). ~0.4 KB each.",
    )
    recent_window_s: int = Field(1800, description="purchased_30m, payment_failures_30m, abandoned_30m window")
    snapshot_interval_ms: int = Field(
        100, description="A seller's snapshot goes out when its numbers change, at most once per this many ms."
    )
    tick_interval_s: float = 1.0
    # Error-spike alerts: a seller's failure rate over the short window is far above its trailing hour.
    spike_window_s: int = 300  # the baseline is the rest of the hour of per-minute rates (streams/spikes.py)
    spike_ratio: float = Field(3.0, description="short-window failure rate / trailing-hour rate that alerts")
    spike_min_failures: int = Field(5, description="failures in the short window needed before alerting")
    spike_min_rate: float = Field(0.2, description="short-window failures / payment attempts needed to alert")
    spike_cooldown_s: int = 900
    # Traffic-dropped alerts: a seller that normally has page views has had none for a while (streams/traffic_drop.py).
    traffic_drop_silent_s: int = Field(900, ge=60, description="Whole minutes without a page view that alert.")
    traffic_drop_min_per_minute: float = Field(
        2.0, gt=0, description="Page views per minute before the silence (the rest of the hour) for it to count."
    )
    traffic_drop_cooldown_s: int = Field(3600, ge=60, description="Least time between two traffic-dropped alerts.")
    traffic_watch_interval_s: float = Field(
        60.0, gt=0, description="How often the worker checks its sellers for dropped traffic (tests: shorter)."
    )

    # --- Stream worker -----------------------------------------------------------------------
    app_id: str = "livemetrics"
    store: str = Field("rocksdb://", description="Faust table store: rocksdb:// (production) or memory://")
    worker_session_timeout_s: float = Field(
        10.0, description="Kafka group session timeout: how soon a crashed worker's partitions move on"
    )
    worker_nice: int = Field(
        -5,
        ge=-20,
        le=19,
        description="The worker's CPU priority (Linux nice, of its autogroup when it leads its session and of its "
        "threads; streams/priority.py): on a machine it shares with the gateway, broker and sink, its main thread "
        "is the live numbers' critical path. Negative needs CAP_SYS_NICE or RLIMIT_NICE (else one log line and the "
        "default priority); 0 leaves it alone.",
    )
    worker_fetch_wait_ms: int = Field(
        20,
        ge=0,
        le=500,
        description="The worker's fetches wait on the broker up to this long for worker_fetch_min_bytes: "
        "fewer, fuller batches (broker requests and per-batch work) for at most this much latency.",
    )
    worker_fetch_min_bytes: int = Field(65_536, ge=1, description="See worker_fetch_wait_ms.")
    worker_idle_fetch_wait_ms: int = Field(
        200,
        ge=0,
        le=500,
        description="Once the last fetch from every broker brought the worker nothing, the next waits on the broker for its first "
        "byte, up to this long (0: as any other): an idle worker's fetches were ~45 empty answers a second "
        "(streams/faust_internals.py hold_idle_fetches). Short: the worker's other requests to the broker (a "
        "rebalance's recovery asks a few) wait behind a fetch the broker holds.",
    )
    worker_changelog_queue_rows: int = Field(
        1_000_000,
        ge=1,
        description="Table changelog rows the worker's changelog producer holds unacknowledged (librdkafka's "
        "queue.buffering.max.messages). When it is full (Kafka not acknowledging) the sessions agent stops reading "
        "until there is room, its event loop running on.",
    )
    # Per-seller caps on distinct values in live state; the rest counts under "~other" (docs/live-semantics.md).
    live_max_categories: int = Field(200, ge=1, description="Live categories kept per seller (first by name).")
    live_max_offers: int = Field(500, ge=1, description="Live offers kept per seller (first by name).")
    live_max_payment_methods: int = Field(
        10, ge=1, description="Payment methods kept per seller in each minute of rates and in the hour shown."
    )
    live_sessions_per_seller_max: int = Field(
        200_000,
        ge=1,
        description="Live sessions the worker keeps per seller (split over the partitions, each its share plus a "
        "margin for uneven hashing: streams/caps.py). A seller's new sessions past it are not counted live (its "
        "snapshot says sessions_capped; history keeps every event); its sessions already kept stay exact.",
    )
    live_sessions_max: int = Field(
        2_000_000,
        ge=1,
        description="Live sessions the worker keeps in all, every seller's (split over the partitions as above), "
        "shared fairly: once a partition holds its share, a new session is refused only for a seller holding "
        "its fair share of it or more (never for one under it; at twice the share, for every seller). Refusals "
        "count in livemetrics_live_sessions_total_refused_total (streams/caps.py).",
    )
    worker_max_message_bytes: int = Field(
        1_000_000,
        ge=100_000,
        description="Largest message the worker produces; at most the broker's "
        "message.max.bytes. The caps above must fit (checked at start); a larger derived message is skipped.",
    )
    worker_metrics_port: int = Field(
        8002,
        ge=0,
        description="The worker's /healthz, /readyz and Prometheus /metrics (0: off; a taken port is "
        "logged and the worker runs without them).",
    )
    startup_wait_s: float = Field(
        15.0,
        ge=0,
        description="How long the gateway and the API wait at start for what they read from Kafka (the seller "
        "keys, the gateway's IP-hash salt, the API's notification channels), all at once, before they listen anyway: with Kafka away they then answer "
        "503 with Retry-After where they need them, and /readyz says 'starting' until they have them.",
    )
    loop_stale_s: float = Field(
        10.0,
        ge=0,
        description="The worker's, the notifier's and the sink's /healthz answer 503 once their event loop (the "
        "sink: its thread) has not run for this many seconds (stuck in a blocking call or a busy loop; an honest "
        "wait on Kafka or ClickHouse is not stuck; their HTTP thread answers anyway). 0: never.",
    )
    loop_stuck_exit_s: float = Field(
        60.0,
        ge=0,
        description="The worker, the notifier, the sink (standalone or embedded in the API), the gateway (each of "
        "its worker processes) and the API end themselves (exit code 70, the stuck thread's stack logged) once "
        "their event loop (the sink: its thread) has not run for this "
        "many seconds, for `up`, compose's `restart:`, the gateway's supervisor or systemd to restart them. "
        "0: never.",
    )

    # --- HTTP --------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    api_port: int = 8001
    dev_mode: bool = Field(
        False,
        description="Development only: start with the built-in placeholder secrets (`livemetrics up` sets it "
        "for its children and says so). Off, every process refuses a placeholder or short secret.",
    )
    orphan_exit_s: float = Field(
        0.0,
        ge=0,
        description="When > 0 (`livemetrics up` and the benchmarks set it for their children): a process whose "
        "parent has gone ends within this many seconds even if its graceful stop hangs. 0: never (nohup keeps working).",
    )
    hung_child_s: float = Field(
        20.0,
        ge=0,
        description="`livemetrics up`: a child that has not answered its /healthz for this many seconds (stopped, "
        "hung) is killed and restarted like one that died. 0: never.",
    )
    admin_token: SecretStr = SecretStr("")
    ip_hash_secret: SecretStr = SecretStr("change-me-ip-hash-secret")
    trusted_proxies: list[str] = Field(default_factory=list)
    ws_max_per_seller: int = 50
    ws_ticket_ttl_s: float = Field(
        30.0, gt=0, le=300, description="How long a dashboard WebSocket ticket (POST /v1/ws-tickets) stays usable."
    )
    ws_ticket_cap: int = Field(
        10_000,
        ge=1,
        description="WebSocket tickets one API process holds (issued and not expired; used and not "
        "expired): past it new tickets get 503 and handshakes close with 1013 (docs/security.md).",
    )
    ws_tickets_per_token: int = Field(
        100,
        ge=1,
        description="Unexpired WebSocket tickets one token may hold on one API process: past it POST "
        "/v1/ws-tickets answers 429 (one token cannot fill the process's ticket cap for everyone).",
    )
    allowed_origins: list[str] = Field(default_factory=lambda: ["*"])
    # Smaller guards of the API (docs/security.md, Smaller guards).
    ws_max_total: int = Field(
        2000, ge=1, description="Dashboard WebSockets one API process holds at most (all sellers)."
    )
    ws_max_per_ip: int = Field(
        20,
        ge=1,
        description="Dashboard WebSockets one client IP may hold on one API process (behind a proxy: "
        "set trusted_proxies, else every client is the proxy).",
    )
    ws_max_message_bytes: int = Field(
        4096, ge=64, description="Largest message a dashboard may send on its WebSocket; a larger one closes it (1009)."
    )
    api_rate_per_s: float = Field(
        20.0,
        gt=0,
        description="REST requests/s per token (per API process), burst of api_rate_burst; past it 429 "
        "with Retry-After.",
    )
    api_rate_burst: int = Field(
        60, ge=1, description="Requests a token may make at once before api_rate_per_s applies."
    )
    api_token_concurrency: int = Field(
        3,
        ge=1,
        description="REST requests of one token under way at once (per API process); its others wait their "
        "turn holding no thread, so one token's burst of reports cannot take every seller's ClickHouse threads.",
    )
    report_max_days: int = Field(
        400, ge=1, description="Longest range (`to` - `from`) one report or payment-error query may cover."
    )

    # --- Notifications (docs/notifications.md) ------------------------------------------------
    notify: bool = Field(True, description="Deliver alerts to the sellers' webhooks from the API process.")
    notify_group: str = Field(
        "livemetrics-notifier",
        description="Consumer group of the notifier on payment-alerts (one delivery per alert across API replicas).",
    )
    notify_timeout_s: float = Field(10.0, gt=0, description="One webhook POST's timeout (connect + answer).")
    notify_concurrency: int = Field(100, ge=1, description="Webhook POSTs in flight at once, all endpoints together.")
    notify_seller_concurrency: int = Field(
        4,
        ge=1,
        description="Of those, one seller's at most (its other channels' deliveries wait in their queues): "
        "sellers whose endpoints hang cannot hold every send slot for the timeout.",
    )
    notify_slow_lane: int = Field(
        10,
        ge=1,
        description="Send slots of their own (besides notify_concurrency) for webhooks whose last attempt "
        "did not end within half of notify_timeout_s: hanging endpoints wait among themselves.",
    )
    notify_main_hold_s: float = Field(
        2.0,
        gt=0,
        description="An attempt on a main slot not ended within this (at most half of notify_timeout_s) gives "
        "its slot back and ends counted in the slow lane: a new webhook that hangs holds a main slot this long.",
    )
    notify_retry_for_s: float = Field(
        86_400.0,
        gt=0,
        description="How long a failing delivery is retried before it is kept as failed (the seller can redeliver it).",
    )
    notify_backoff_s: float = Field(5.0, gt=0, description="First retry delay; doubled per attempt, with jitter.")
    notify_backoff_max_s: float = Field(3600.0, gt=0, description="Longest delay between two attempts.")
    notify_max_channels: int = Field(10, ge=1, description="Notification channels one seller may have.")
    notify_channel_changes_per_hour: float = Field(
        60.0,
        gt=0,
        description="Channel adds, removals and rules changes one seller may make per hour (per API process), "
        "after a burst of 20; past it 429. Each is a record every replica reads when it starts.",
    )
    notify_channel_backlog: int = Field(
        10_000,
        ge=1,
        description="Deliveries one channel may owe a notifier at once (queued, sending or waiting for a "
        "retry); past it a new one is recorded failed, for the seller to redeliver (a flood of alerts cannot "
        "grow the notifier's memory).",
    )
    notify_seller_backlog: int = Field(
        20_000,
        ge=1,
        description="Deliveries one seller may owe a notifier at once over all its channels; past it a new one "
        "is recorded failed, for the seller to redeliver (10 channels at notify_channel_backlog each held ~120 MB).",
    )
    notify_seller_backlog_bytes: int = Field(
        64 << 20,
        ge=1 << 20,
        description="Bytes of alert bodies one seller's owed deliveries may hold in a notifier; past it a new one "
        "is recorded failed, for the seller to redeliver (a browser key's payment failure makes an alert of up to "
        "~33 KB: notify_seller_backlog of them held ~630 MB).",
    )
    notify_backlog_bytes: int = Field(
        512 << 20,
        ge=1 << 20,
        description="Bytes of alert bodies all sellers' owed deliveries may hold in a notifier; past it a new "
        "delivery that would take its seller past its share (this over the sellers owed) is recorded failed, for the "
        "seller to redeliver; one within its share goes through, the newest waiting deliveries of the sellers most "
        "over their shares dropped (recorded failed) to make room.",
    )
    notify_poll_s: float = Field(
        5.0,
        gt=0,
        description="Every notifier (the API's and `livemetrics notifier`) looks this often for pending "
        "deliveries of its sellers changed since its last look (e.g. redeliveries asked through another replica).",
    )
    notifier_ops_port: int = Field(
        8004, ge=0, description="The standalone notifier's /healthz, /readyz and /metrics (0: off)."
    )
    # Email channels need an SMTP server; without smtp_host they cannot be added.
    smtp_host: str = Field("", description="SMTP server for alert emails ('' : email channels are off).")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = Field("livemetrics <alerts@localhost>", description="The From of alert emails.")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS before logging in.")
    smtp_ca_file: str = Field(
        "", description="CA bundle (PEM) that signs the SMTP server's certificate ('' : the system's CAs)."
    )
    notify_email_max: int = Field(
        5,
        ge=1,
        description="Emails one seller gets per notify_email_window_s; alerts "
        "past it wait and go out together as one digest.",
    )
    notify_email_window_s: float = Field(600.0, gt=0)
    public_url: str = Field(
        "", description="Where sellers reach the API and dashboard (links in emails); default http://<host>:<api_port>."
    )

    # --- Ingest gateway (docs/ingest.md) -----------------------------------------------------
    key_encryption_key: SecretStr = Field(
        SecretStr("dev-only-key-encryption-key"),
        description="Seals server-key secrets in the seller-keys topic (AES-GCM); set your own in production.",
    )
    signature_tolerance_s: int = Field(300, description="Server-key signatures older or newer than this are refused.")
    max_clock_skew_s: int = Field(
        86_400,
        ge=1,
        description="An event's `ts` may be at most this far from the gateway's clock (either way; "
        "backfill: up to event_ttl_days into the past).",
    )
    gateway_rate_per_s: int = Field(
        20_000,
        ge=1,
        description="Default event rate of a server key (per gateway: its processes share it); burst of 2 s.",
    )
    # Browser keys are public (copied from any storefront page): far lower defaults (docs/security.md, Browser keys).
    browser_rate_per_s: int = Field(
        200,
        ge=1,
        description="Default event rate of a browser key (per gateway: its processes share it); burst of 2 s. "
        "`sellers add --rate` sets a key's own.",
    )
    client_ip_rate_per_s: int = Field(
        50,
        ge=0,
        description="Events/s one client IP (an IPv6 /64) may send with browser keys, per gateway (its processes "
        "share it), "
        "whatever the key; burst of 2 s; 0: no limit. Behind a proxy, set trusted_proxies.",
    )
    replay_cache_max: int = Field(
        1_000_000,
        ge=1,
        description="Signatures a gateway process remembers per server key (each for 2 x "
        "signature_tolerance_s; ~200 bytes each); when a key's are full, that key's signed requests get 503 + "
        "Retry-After instead of a signature being forgotten early, and other keys are not affected.",
    )
    gateway_workers: int = Field(
        1, ge=1, description="Gateway processes behind one port (uvicorn workers); one per core."
    )
    http_max_head_bytes: int = Field(
        65_536,
        ge=1024,
        description="Gateway and API: the largest request head (request line and headers); over it 431 and "
        "the connection closes (uvicorn's httptools parser bounds none).",
    )
    http_max_target_bytes: int = Field(
        8192,
        ge=256,
        description="Gateway and API: the longest request target (path and query string); over it 414 and the "
        "connection closes.",
    )
    http_head_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Gateway and API: a request head must be whole this long after the connection opened (or "
        "after its first byte, on a kept-alive connection); else 408 and the connection closes.",
    )
    http_body_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Gateway and API: a request body must be whole this long after its head; else 408 (unless "
        "answered already) and the connection closes.",
    )
    http_send_stall_s: float = Field(
        30.0,
        gt=0,
        description="Gateway and API: a connection whose client takes none of what is sent for this long (the "
        "write buffer stays over its high-water mark) is aborted (livemetrics/unread_peer.py).",
    )
    gateway_shared_signatures: int = Field(
        1 << 20,
        ge=0,
        description="With gateway_workers > 1: signatures the gateway's processes remember together (24 bytes "
        "each, for 2 x signature_tolerance_s), so that a signed request is accepted once by the gateway, not "
        "once per process. When full, each process's own replay cache still refuses what it saw. 0: off.",
    )
    # Overload protection (producers/gateway/overload.py, docs/operations.md "Overload: heavy senders first").
    gateway_overload_lag_events: int = Field(
        100_000,
        ge=0,
        description="Live processing is behind when the worker group's committed offsets are this many raw "
        "events short of the topics' ends and the lag grows (a shrinking backlog, e.g. after an outage, is "
        "not); then sellers sending far over their share get 429. 0: off.",
    )
    gateway_overload_clear_events: int = Field(
        25_000, ge=0, description="Behind ends (refusals stop) once the lag is back at or under this many events."
    )
    gateway_overload_share: float = Field(
        4.0,
        ge=1,
        description="While behind, a seller is refused when it sent more than this many times the other "
        "sellers' mean in the last window (a seller alone is refused too).",
    )
    gateway_overload_window_s: float = Field(5.0, gt=0, description="The window the sellers' shares are counted over.")
    gateway_overload_check_s: float = Field(
        2.0,
        gt=0,
        description="How often the lag is read from Kafka (two small requests per read, once for all of a "
        "gateway's processes).",
    )
    gateway_overload_stalled_s: float = Field(
        15.0,
        gt=0,
        description="A lag whose committed offsets have not moved for this long is a stopped worker, not an "
        "overload: nothing is refused for it (the backlog waits in Kafka).",
    )
    gateway_metrics_dir: Path | None = Field(
        None,
        description="With gateway_workers > 1: where the workers' metrics files go (Prometheus multiprocess "
        "mode; any worker's /metrics is the sum over all). Default <data_dir>/gateway-metrics; emptied at start.",
    )
    demo_storefront: bool = Field(False, description="Serve the demo storefront under /demo/ on the gateway.")
    demo_browser_key: str = Field("", description="The browser key the demo storefront's pages embed.")

    @model_validator(mode="after")
    def _dedup_window_covers_what_kafka_keeps(self) -> Settings:
        # A reset of the sink (a new or truncated log, clickhouse/sink_logs.py) reads the log from its start: an
        # event still in Kafka whose key was purged would be stored twice.
        kept = max(self.raw_retention_hours, self.pii_retention_hours) + RAW_KEPT_PAST_RETENTION_HOURS
        if self.dedup_window_hours < kept:
            raise ValueError(
                f"dedup_window_hours ({self.dedup_window_hours}) is less than what Kafka can keep of a raw event: "
                f"the raw topics' retention ({max(self.raw_retention_hours, self.pii_retention_hours)} h, "
                f"raw_retention_hours/pii_retention_hours) + {RAW_KEPT_PAST_RETENTION_HOURS} h (hourly segments, "
                f"the broker's retention check): a log read again from its start would store such events twice. "
                f"Set LIVEMETRICS_DEDUP_WINDOW_HOURS to at least {kept}"
            )
        return self

    def child_env(self) -> dict[str, str]:
        """This process's environment plus every setting as ``LIVEMETRICS_*``, so that a child process
        (worker, gateway, benchmark load) reads exactly these settings."""
        import json
        import os

        env = dict(os.environ)
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            env[f"LIVEMETRICS_{name.upper()}"] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        return env

    def topic(self, name: str) -> str:
        """The real topic name for a logical one (adds the configured prefix)."""
        return f"{self.topic_prefix}{name}"

    @property
    def clickhouse_url(self) -> str:
        return self.clickhouse_dsn or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def clickhouse_embedded(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")


class SettingsError(ValueError):
    """Settings that do not parse, one line per bad value (the variable, what is wrong, what was given)."""


def _explain(exc: ValidationError) -> SettingsError:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        if not field:  # a check across fields (a model validator): its message names them
            lines.append(f"bad settings: {str(err['msg']).removeprefix('Value error, ')}")
            continue
        secret = field in Settings.model_fields and Settings.model_fields[field].annotation is SecretStr
        given = "" if secret or err.get("input") is None else f" (given {str(err['input'])[:60]!r})"
        name = f"LIVEMETRICS_{field.upper()}"
        lines.append(f"bad setting {name}: {err['msg']}{given}")
    return SettingsError("; ".join(lines))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise _explain(exc) from None
