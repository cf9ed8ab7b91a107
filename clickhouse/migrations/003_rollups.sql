-- Hourly rollups (UTC hours of the sender's `ts`) that the reports read instead of the raw events.
-- Fed by materialized views on `events`; bots never enter them. Distinct sessions are `uniq` states,
-- merged across hours at query time (exact for small sets, about 1% error beyond ~65k per group).

-- hourly activity: page views, sessions, checkouts, purchases per seller and hour
CREATE TABLE IF NOT EXISTS {db}.rollup_traffic_hourly
(
    seller_id   LowCardinality(String),
    hour        DateTime('UTC'),
    page_views  SimpleAggregateFunction(sum, UInt64),
    sessions    AggregateFunction(uniq, String),
    checkouts   SimpleAggregateFunction(sum, UInt64),
    purchases   SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (seller_id, hour)
TTL hour + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_traffic_hourly_mv TO {db}.rollup_traffic_hourly AS
SELECT seller_id, toStartOfHour(ts) AS hour,
       countIf(type = 'page_view') AS page_views,
       uniqStateIf(session_id, type = 'page_view') AS sessions,
       countIf(type = 'checkout_started') AS checkouts,
       countIf(type = 'payment_succeeded') AS purchases
FROM {db}.events
WHERE NOT is_bot
GROUP BY seller_id, hour;

-- page views and sessions by page type, category and offer
CREATE TABLE IF NOT EXISTS {db}.rollup_pages_hourly
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
PARTITION BY toYYYYMM(hour)
ORDER BY (seller_id, hour, page_type, category, offer_id)
TTL hour + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_pages_hourly_mv TO {db}.rollup_pages_hourly AS
SELECT seller_id, toStartOfHour(ts) AS hour, page_type, category, offer_id,
       count() AS views, uniqState(session_id) AS sessions
FROM {db}.events
WHERE type = 'page_view' AND NOT is_bot
GROUP BY seller_id, hour, page_type, category, offer_id;

-- payment outcomes and revenue by method, error code and currency
CREATE TABLE IF NOT EXISTS {db}.rollup_payments_hourly
(
    seller_id       LowCardinality(String),
    hour            DateTime('UTC'),
    payment_method  LowCardinality(String),
    error_code      LowCardinality(String),
    currency        LowCardinality(String),
    started         SimpleAggregateFunction(sum, UInt64),
    succeeded       SimpleAggregateFunction(sum, UInt64),
    failed          SimpleAggregateFunction(sum, UInt64),
    revenue         SimpleAggregateFunction(sum, Float64),
    message         SimpleAggregateFunction(anyLast, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (seller_id, hour, payment_method, error_code, currency)
TTL hour + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_payments_hourly_mv TO {db}.rollup_payments_hourly AS
SELECT seller_id, toStartOfHour(ts) AS hour, payment_method, error_code, currency,
       countIf(type = 'payment_started') AS started,
       countIf(type = 'payment_succeeded') AS succeeded,
       countIf(type = 'payment_failed') AS failed,
       sumIf(total, type = 'payment_succeeded') AS revenue,
       anyLast(error_message) AS message
FROM {db}.events
WHERE type IN ('payment_started', 'payment_succeeded', 'payment_failed') AND NOT is_bot
GROUP BY seller_id, hour, payment_method, error_code, currency;

-- one row per session (after merges): when it started, what it viewed, how far it got in the funnel
CREATE TABLE IF NOT EXISTS {db}.session_facts
(
    seller_id   LowCardinality(String),
    session_id  String,
    first_at    SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_at     SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    categories  SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    offers      SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    product     SimpleAggregateFunction(max, UInt8),
    checkout    SimpleAggregateFunction(max, UInt8),
    payment     SimpleAggregateFunction(max, UInt8),
    purchase    SimpleAggregateFunction(max, UInt8)
)
ENGINE = AggregatingMergeTree
ORDER BY (seller_id, session_id)
TTL toDateTime(last_at) + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.session_facts_mv TO {db}.session_facts AS
SELECT seller_id, session_id, min(ts) AS first_at, max(ts) AS last_at,
       groupUniqArrayIf(category, type = 'page_view' AND page_type = 'category' AND category != '') AS categories,
       groupUniqArrayIf(offer_id, type = 'page_view' AND page_type = 'offer' AND offer_id != '') AS offers,
       max(type = 'page_view' AND page_type IN ('offer', 'product')) AS product,
       max(type = 'checkout_started') AS checkout,
       max(type IN ('payment_started', 'payment_succeeded', 'payment_failed')) AS payment,
       max(type = 'payment_succeeded') AS purchase
FROM {db}.events
WHERE NOT is_bot
GROUP BY seller_id, session_id;
