-- Server time and exact money (docs/clickhouse.md, "Migration 006").
-- - events: partitioned by the month of `received_at` (the gateway's clock) and its row and personal-data
--   TTLs count from it, so that no sender `ts` can create partitions or keep personal data longer;
--   `total` is money, Decimal(18, 4) (livemetrics.contract.MONEY_TYPE).
-- - payment_errors: `at` is already a server time (the failed payment's received_at, or the worker's
--   clock for an error_spike); `amount` becomes Decimal(18, 4).
-- - the hourly rollups: no partition key. They are keyed by the sender's hour (reports are by sender
--   hour), so a partition per month of `ts` would let one batch of events touch as many partitions as
--   its `ts` span months; the sorting key (seller_id, hour, ...) prunes a report's range as well.
--   revenue is summed as Decimal(38, 4), the type of ClickHouse's sum of a Decimal(18, 4).
-- Each table is created as `<table>__next` with the new layout, marked by its comment; `migrate` then
-- copies the rows over and swaps the two tables (clickhouse/table_swap.py). The materialized views
-- name their source and target tables, so after the swap they read and write the new ones.

CREATE TABLE IF NOT EXISTS {db}.events__next
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
    total           Decimal(18, 4),
    currency        LowCardinality(String),
    payment_method  LowCardinality(String),
    order_id        String,
    error_code      LowCardinality(String),
    error_message   String,
    error_details   String,
    customer_email  String TTL toDateTime(received_at) + INTERVAL {pii_ttl_days} DAY,
    customer_phone  String TTL toDateTime(received_at) + INTERVAL {pii_ttl_days} DAY,
    customer_name   String TTL toDateTime(received_at) + INTERVAL {pii_ttl_days} DAY,
    ip              String TTL toDateTime(received_at) + INTERVAL {pii_ttl_days} DAY,
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
PARTITION BY toYYYYMM(received_at)
ORDER BY (seller_id, type, ts, event_id)
TTL toDateTime(received_at) + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'layout 006';

CREATE TABLE IF NOT EXISTS {db}.payment_errors__next
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
    amount          Decimal(18, 4),
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
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'layout 006';

CREATE TABLE IF NOT EXISTS {db}.rollup_traffic_hourly__next
(
    seller_id   LowCardinality(String),
    hour        DateTime('UTC'),
    page_views  SimpleAggregateFunction(sum, UInt64),
    sessions    AggregateFunction(uniq, String),
    checkouts   SimpleAggregateFunction(sum, UInt64),
    purchases   SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (seller_id, hour)
TTL hour + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'layout 006';

CREATE TABLE IF NOT EXISTS {db}.rollup_pages_hourly__next
(
    seller_id   LowCardinality(String),
    hour        DateTime('UTC'),
    page_type   LowCardinality(String),
    category    LowCardinality(String),
    offer_id    String,
    views       SimpleAggregateFunction(sum, UInt64),
    sessions    AggregateFunction(uniq, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (seller_id, hour, page_type, category, offer_id)
TTL hour + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'layout 006';

CREATE TABLE IF NOT EXISTS {db}.rollup_payments_hourly__next
(
    seller_id       LowCardinality(String),
    hour            DateTime('UTC'),
    payment_method  LowCardinality(String),
    error_code      LowCardinality(String),
    currency        LowCardinality(String),
    started         SimpleAggregateFunction(sum, UInt64),
    succeeded       SimpleAggregateFunction(sum, UInt64),
    failed          SimpleAggregateFunction(sum, UInt64),
    revenue         SimpleAggregateFunction(sum, Decimal(38, 4)),
    message         SimpleAggregateFunction(anyLast, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (seller_id, hour, payment_method, error_code, currency)
TTL hour + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'layout 006';
