-- Raw events: every field of the contract (livemetrics.contract.COLUMNS) plus where it came from in
-- Kafka, so that the sink can resume exactly after the last row it stored.
CREATE TABLE IF NOT EXISTS {db}.events
(
    event_id        UUID,
    type            LowCardinality(String),
    seller_id       LowCardinality(String),
    session_id      String,
    ts              DateTime64(3, 'UTC'),
    received_at     DateTime64(3, 'UTC'),
    page_type       LowCardinality(String),
    category        LowCardinality(String),
    offer_id        String,
    path            String,
    items           String,
    total           Float64,
    currency        LowCardinality(String),
    payment_method  LowCardinality(String),
    order_id        String,
    error_code      LowCardinality(String),
    error_message   String,
    error_details   String,
    customer_email  String,
    customer_phone  String,
    customer_name   String,
    ip              String,
    ip_hash         String,
    user_agent      String,
    browser         LowCardinality(String),
    os              LowCardinality(String),
    device          LowCardinality(String),
    is_bot          Bool,
    backfill        Bool,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (seller_id, type, ts, event_id)
TTL toDateTime(ts) + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
