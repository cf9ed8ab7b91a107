-- Webhook deliveries of alerts (api/notify/): every attempt's outcome is a new row version, the newest per
-- (seller_id, delivery_id) wins (FINAL). A delivery is recorded here as pending before the notifier commits
-- the alert's offset: an API that restarts finds what it still owes here, not in Kafka.
-- `body` is the alert as sent (customer contact included for a channel added by a token with the PII
-- right): kept pii_ttl_days, as payment_errors' contact columns.
CREATE TABLE IF NOT EXISTS {db}.notification_deliveries
(
    seller_id    LowCardinality(String),
    delivery_id  String,
    alert_id     String,
    alert_kind   LowCardinality(String),
    channel_id   String,
    target       String,
    body         String TTL toDateTime(created_at) + INTERVAL {pii_ttl_days} DAY,
    status       LowCardinality(String),
    attempts     UInt32,
    last_error   String,
    created_at   DateTime64(3, 'UTC'),
    next_at      DateTime64(3, 'UTC'),
    updated_at   DateTime64(3, 'UTC'),
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (seller_id, delivery_id)
TTL toDateTime(created_at) + INTERVAL {event_ttl_days} DAY;
