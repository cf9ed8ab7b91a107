-- Alert history from the payment-alerts topic (streams/alerts.py builds the shape): failed payments
-- with the customer's contact, the order and diagnostics, and error_spike alerts.
-- ReplacingMergeTree on (seller_id, at, alert_id): a redelivered alert collapses into one row.
CREATE TABLE IF NOT EXISTS {db}.payment_errors
(
    alert_id        String,
    kind            LowCardinality(String),
    seller_id       LowCardinality(String),
    session_id      String,
    at              DateTime64(3, 'UTC'),
    customer_email  String TTL toDateTime(at) + INTERVAL {pii_ttl_days} DAY,
    customer_phone  String TTL toDateTime(at) + INTERVAL {pii_ttl_days} DAY,
    customer_name   String TTL toDateTime(at) + INTERVAL {pii_ttl_days} DAY,
    ip              String TTL toDateTime(at) + INTERVAL {pii_ttl_days} DAY,
    order_id        String,
    amount          Float64,
    currency        LowCardinality(String),
    items           String,
    payment_method  LowCardinality(String),
    error_code      LowCardinality(String),
    error_message   String,
    error_details   String,
    browser         LowCardinality(String),
    os              LowCardinality(String),
    device          LowCardinality(String),
    user_agent      String,
    context         String,
    extra           String,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (seller_id, at, alert_id)
TTL toDateTime(at) + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sink_offsets_alerts_mv TO {db}.sink_offsets AS
SELECT kafka_topic, kafka_partition, max(kafka_offset) AS max_offset
FROM {db}.payment_errors
GROUP BY kafka_topic, kafka_partition;

-- What the seller did about an alert; every change is kept, the newest per alert wins.
CREATE TABLE IF NOT EXISTS {db}.payment_error_status
(
    seller_id   LowCardinality(String),
    alert_id    String,
    status      LowCardinality(String),
    note        String,
    updated_at  DateTime64(3, 'UTC'),
    updated_by  String
)
ENGINE = MergeTree
ORDER BY (seller_id, alert_id, updated_at);
