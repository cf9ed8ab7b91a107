-- The hourly report's distinct sessions, finalized per seller and hour (clickhouse/traffic_fold.py), so that
-- the report adds up a few hundred numbers instead of reading every hour's `uniq` state of
-- rollup_traffic_hourly back into a hash set (~80 ms of CPU a 30-day report of a 10 M-event seller).
-- A row says: when the rollup held `page_views` page views for this hour, its merged `uniq` state counted
-- `sessions`; `shared` = 1 when some session hash of the hour is also in an hour 1-5 weeks (+-3 h) away, or
-- that could not be checked exactly (more than 65,536 hashes in a comparison, where `uniq` estimates).
-- Every session of the rollup comes with a page view (sessions = uniqStateIf(session_id, page_view)), so
-- while the rollup's page views of the hour still equal `page_views`, its state is the one counted. The
-- report checks that per hour, and adds up a cell's counts only where that equals merging its states
-- (clickhouse/queries/hourly.sql); everywhere else it merges the states as before. An hour refolded after
-- late events gets a new row; the newest (`version`) counts. Filled for every hour already in the rollup
-- by the first fold after this migration (the sink's fold thread, at start).
CREATE TABLE IF NOT EXISTS {db}.traffic_hours
(
    seller_id   LowCardinality(String),
    hour        DateTime('UTC'),
    page_views  UInt64,
    sessions    UInt64,
    shared      UInt8,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (seller_id, hour)
TTL hour + INTERVAL {event_ttl_days} DAY;
