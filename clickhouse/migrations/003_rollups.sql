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

-- One row per session (after merges): the UTC hour it started, the furthest funnel step it reached and
-- the categories and offers it viewed. The session-based reports (categories, offers, funnel) scan it,
-- so it is kept narrow: the key is a 64-bit hash of session_id (a collision needs ~4e9 sessions per
-- seller to become likely; 1 M sessions give a ~3e-8 chance of one), the start is an hour (reports
-- align ranges to whole hours) and the funnel is one number, `furthest` (0 visit, 1 product,
-- 2 checkout, 3 payment, 4 purchase), whose max over a session's events is its furthest step.
CREATE TABLE IF NOT EXISTS {db}.session_facts
(
    seller_id   LowCardinality(String),
    session     UInt64,
    first_hour  SimpleAggregateFunction(min, DateTime('UTC')),
    furthest    SimpleAggregateFunction(max, UInt8),
    categories  SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    offers      SimpleAggregateFunction(groupUniqArrayArray, Array(String))
)
ENGINE = AggregatingMergeTree
ORDER BY (seller_id, session)
TTL first_hour + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.session_facts_mv TO {db}.session_facts AS
SELECT seller_id, cityHash64(session_id) AS session, min(toStartOfHour(ts)) AS first_hour,
       max(multiIf(type = 'payment_succeeded', 4, type IN ('payment_started', 'payment_failed'), 3,
                   type = 'checkout_started', 2, type = 'page_view' AND page_type IN ('offer', 'product'), 1, 0)) AS furthest,
       groupUniqArrayIf(category, type = 'page_view' AND page_type = 'category' AND category != '') AS categories,
       groupUniqArrayIf(offer_id, type = 'page_view' AND page_type = 'offer' AND offer_id != '') AS offers
FROM {db}.events
WHERE NOT is_bot
GROUP BY seller_id, session;
