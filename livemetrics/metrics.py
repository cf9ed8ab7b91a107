"""Prometheus metrics (prometheus-client), shared by the gateway and the API."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("livemetrics_events_accepted_total", "Events made durable in Kafka", ["type"])
EVENTS_REJECTED = Counter("livemetrics_events_rejected_total", "Events rejected by the gateway", ["reason"])
DELIVERY_FAILURES = Counter(
    "livemetrics_delivery_failures_total", "Requests answered 503 because Kafka did not confirm"
)
# Gateway requests whose validation cost over 250 us CPU per event (digit groups made for the card check)
# and were charged rate-limit room for it (producers/gateway/events.py, _charge_validation), by who paid:
# "client_ip" (a browser key's client) or "key" (a server key, or any key with the per-IP limit off). No
# IP or key label: the values are bounded; the 429s that follow name the client or key.
VALIDATION_CHARGED = Counter(
    "livemetrics_gateway_validation_charged_total",
    "Requests charged rate-limit room for expensive validation, by who paid (client_ip or key)",
    ["charged_to"],
)
VALIDATION_CHARGED_EVENTS = Counter(
    "livemetrics_gateway_validation_charged_events_total",
    "Rate-limit room charged for expensive validation, in events, by who paid (client_ip or key)",
    ["charged_to"],
)
# Events refused with 429 because live processing was behind and their seller sent far over its share
# (producers/gateway/overload.py). No seller label: sellers are many; the 429's body names the seller.
OVERLOAD_REFUSED = Counter(
    "livemetrics_gateway_overload_refused_events_total",
    "Events refused (429) while live processing was behind, their seller sending far over its share",
)
WS_CLIENTS = Gauge("livemetrics_ws_clients", "Open dashboard WebSockets")
PUSH_LATENCY = Histogram(
    "livemetrics_push_latency_seconds",
    "Snapshot as_of to WebSocket send",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
CONSUMER_LAG = Gauge("livemetrics_consumer_lag", "Messages behind the end of a topic", ["consumer", "topic"])
NOTIFY_SKIPPED = Counter(
    "livemetrics_notify_skipped_total",
    "Messages on payment-alerts the notifier could not use (a tombstone, not JSON, not an object), skipped",
    ["topic"],
)
LIVE_FEED_SKIPPED = Counter(
    "livemetrics_live_feed_skipped_total",
    "Messages the API's live feed could not use (not a JSON object, a tombstone, no seller), skipped",
    ["topic"],
)
SINK_ROWS = Counter("livemetrics_sink_rows_total", "Rows inserted into ClickHouse", ["table"])
SINK_BATCHES_FAILED = Counter(
    "livemetrics_sink_batches_failed_total", "Sink batches whose store failed (transient: retried with backoff)"
)
SINK_REFUSED = Counter("livemetrics_sink_refused_total", "Raw-topic messages ClickHouse refused, sent to dead-letter")
# clickhouse/sink_logs.py (split_partitions): a raw topic whose partition count is not its worker changelog's
RAW_PARTITIONS_SPLIT = Gauge(
    "livemetrics_raw_partitions_mismatch",
    "1 while a raw topic has another number of partitions than the worker's sessions changelog (partitions added "
    "to it: keys moved, the worker's live state split, and a restarted worker stops), seen by the sink at its "
    "assignments",
    ["topic"],
)
# livemetrics/topic_watch.py: a group-less reader's topic created again (read from its start) or given partitions
TOPIC_CHANGES = Counter(
    "livemetrics_topic_changes_total",
    "Topics a group-less reader (seller keys, channels, live feed, ip-salts) found created again (change=recreated) "
    "or with new partitions (change=partitions_added), and read from their start",
    ["reader", "topic", "change"],
)
SINK_LOG_RESETS = Counter(
    "livemetrics_sink_log_resets_total",
    "Partitions whose offsets stored in ClickHouse did not fit the Kafka log at an assignment, by reason: new_log "
    "(another topic id: recreated, another cluster), beyond_end (truncated), expired (retention deleted unread "
    "messages), unrecorded (no topic id recorded, no group offset); the sink read them from the log's start "
    "(clickhouse/sink_logs.py); past_dedup_window: a raw topic so read keeps records longer than "
    "dedup_window_hours (weekly segments: events stored before the window may be stored again)",
    ["topic", "reason"],
)
SINK_LAG = Gauge(
    "livemetrics_sink_lag_events",
    "Messages not stored in ClickHouse yet (high watermark - stored)",
    ["topic", "partition"],
)
SINK_OLDEST_UNSTORED = Gauge(
    "livemetrics_sink_oldest_unstored_seconds", "Age of the oldest message the sink holds and has not stored (0: none)"
)
SINK_STALLED = Gauge(
    "livemetrics_sink_stalled", "1 while the sink has a lag and has not stored anything for sink_stall_s"
)
