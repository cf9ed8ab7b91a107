-- Raw events: every field of the contract (livemetrics.contract.COLUMNS, the source of truth; a test
-- checks this table against it) plus where the row came from in Kafka.
-- Personal-data columns (contract.PII_COLUMNS) expire sooner than the rows: pii_ttl_days.
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
    customer_email  String TTL toDateTime(ts) + INTERVAL {pii_ttl_days} DAY,
    customer_phone  String TTL toDateTime(ts) + INTERVAL {pii_ttl_days} DAY,
    customer_name   String TTL toDateTime(ts) + INTERVAL {pii_ttl_days} DAY,
    ip              String TTL toDateTime(ts) + INTERVAL {pii_ttl_days} DAY,
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
-- The dedup window makes a retried insert with the same insert_deduplication_token a no-op.
SETTINGS non_replicated_deduplication_window = 1000;

-- Highest Kafka offset stored per topic/partition: where the sink resumes after a crash or rebalance
-- (cheaper than max(kafka_offset) over the whole events table).
CREATE TABLE IF NOT EXISTS {db}.sink_offsets
(
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    max_offset      SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (kafka_topic, kafka_partition)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sink_offsets_events_mv TO {db}.sink_offsets AS
SELECT kafka_topic, kafka_partition, max(kafka_offset) AS max_offset
FROM {db}.events
GROUP BY kafka_topic, kafka_partition;
