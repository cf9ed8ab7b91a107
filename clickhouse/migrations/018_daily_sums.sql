-- Whole UTC days for the session reports (categories, offers, funnel; docs/clickhouse.md, "Reports"): over 30
-- days they read hourly sums, ~512k rows for a 10 M-event seller's offers report (300 offers x 720 hours of
-- page views and of sessions). A report now reads each whole UTC day inside its range from a day's sums
-- and only the hours at the range's two ends from the hourly ones (the day rows of a day equal the sums of
-- its hours; clickhouse/session_reports.py, day_span).
--   rollup_pages_daily  rollup_pages_hourly's page views per UTC day (fed by its own view on `events`)
--   session_sums        kinds 'category_day', 'offer_day', 'furthest_day': the hourly kinds' deltas again,
--                       at the UTC day of their start hour, written by every fold step in the same insert
--                       (one part) as its hourly deltas and its watermark (clickhouse/queries/fold.sql)
-- Existing rows are brought over from the hourly ones, after removing any day rows already there: a run that
-- failed part-way (an INSERT ... SELECT is written block by block) left some of them, and nothing else writes
-- day rows before this migration is recorded (the fold starts after the migrations). Run it with the sinks
-- stopped (as every migration here: `livemetrics up`, `api` and `sink` migrate before their sink starts): an
-- insert between the copy and the view's creation would be missing from the day table, a fold step between
-- the copy's read and its insert from the day rows.

-- No partition key, as the hourly rollups since 006: keyed by the sender's day, a partition per month would let
-- one sink batch of far-apart `ts` touch more partitions than an insert may (the whole batch refused).
CREATE TABLE IF NOT EXISTS {db}.rollup_pages_daily
(
    seller_id   LowCardinality(String),
    day         DateTime('UTC'),
    page_type   LowCardinality(String),
    category    LowCardinality(String),
    offer_id    String,
    views       SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (seller_id, page_type, day, category, offer_id)
TTL day + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

TRUNCATE TABLE {db}.rollup_pages_daily;

INSERT INTO {db}.rollup_pages_daily (seller_id, day, page_type, category, offer_id, views)
SELECT seller_id, toStartOfDay(hour) AS day, page_type, category, offer_id, sum(views)
FROM {db}.rollup_pages_hourly
GROUP BY seller_id, day, page_type, category, offer_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_pages_daily_mv TO {db}.rollup_pages_daily AS
SELECT seller_id, toStartOfDay(ts) AS day, page_type, category, offer_id, count() AS views
FROM {db}.events
WHERE type = 'page_view' AND NOT is_bot
GROUP BY seller_id, day, page_type, category, offer_id;

DELETE FROM {db}.session_sums WHERE kind IN ('category_day', 'offer_day', 'furthest_day');

INSERT INTO {db}.session_sums (seller_id, kind, start_hour, item, sessions, checkout_sessions, folded_to)
SELECT seller_id, concat(toString(kind), '_day') AS day_kind, toStartOfDay(start_hour) AS day, item,
       sum(sessions) AS s, sum(checkout_sessions) AS c, toDateTime(0, 'UTC')
FROM {db}.session_sums
WHERE kind IN ('category', 'offer', 'furthest')
GROUP BY seller_id, day_kind, day, item
HAVING s != 0 OR c != 0;
