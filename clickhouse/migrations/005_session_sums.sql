-- Exact session counts that reports read without merging every session of the seller
-- (docs/clickhouse.md, "Reports"; clickhouse/session_fold.py keeps them).
--   session_updates  the per-session partial rows session_facts had, as a log ordered by `inserted`, the
--                    10 s bucket of the insert that wrote the row
--   session_state    every folded session's merged state, by key (a key-value store: the fold and the
--                    reports look up only the sessions they touch)
--   session_sums     per seller, start hour and item, exact signed session counts up to a watermark
-- A fold step takes the log rows of [watermark, new watermark), merges them into the sessions' states
-- and adds the change of every touched session's contribution to session_sums. A report reads
-- session_sums plus the same change computed for the log rows since the watermark.
-- Re-runnable: every statement is IF [NOT] EXISTS, and a partial row copied twice changes nothing
-- (min, max and set union are idempotent).

CREATE TABLE IF NOT EXISTS {db}.session_updates
(
    inserted    DateTime('UTC'),
    seller_id   LowCardinality(String),
    session     UInt64,
    first_hour  SimpleAggregateFunction(min, DateTime('UTC')),
    furthest    SimpleAggregateFunction(max, UInt8),
    categories  SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    offers      SimpleAggregateFunction(groupUniqArrayArray, Array(String))
)
ENGINE = AggregatingMergeTree
ORDER BY (inserted, seller_id, session)
TTL first_hour + INTERVAL {event_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Same facts as session_facts_mv had; now() is fixed for the whole insert. Created before the old view
-- is dropped, so no insert is missed in between (a row written by both is merely a duplicate).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.session_updates_mv TO {db}.session_updates AS
SELECT toStartOfInterval(now(), INTERVAL 10 SECOND) AS inserted, seller_id, cityHash64(session_id) AS session,
       min(toStartOfHour(ts)) AS first_hour,
       max(multiIf(type = 'payment_succeeded', 4, type IN ('payment_started', 'payment_failed'), 3,
                   type = 'checkout_started', 2, type = 'page_view' AND page_type IN ('offer', 'product'), 1, 0)) AS furthest,
       groupUniqArrayIf(category, type = 'page_view' AND page_type = 'category' AND category != '') AS categories,
       groupUniqArrayIf(offer_id, type = 'page_view' AND page_type = 'offer' AND offer_id != '') AS offers
FROM {db}.events
WHERE NOT is_bot
GROUP BY seller_id, session;

DROP VIEW IF EXISTS {db}.session_facts_mv;

-- Existing partial rows move to the log labelled an hour back, so that the sink's first fold takes
-- them at once (no fold has run yet: session_sums is created below). A second copy of the same rows
-- (concurrent or repeated runs) changes no session's state, folded or not.
-- (The empty table stands in for session_facts when a re-run finds it already dropped.)
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
ORDER BY (seller_id, session);

INSERT INTO {db}.session_updates (inserted, seller_id, session, first_hour, furthest, categories, offers)
SELECT toStartOfInterval(now() - INTERVAL 1 HOUR, INTERVAL 10 SECOND), seller_id, session, first_hour, furthest,
       categories, offers
FROM {db}.session_facts;

DROP TABLE IF EXISTS {db}.session_facts;

-- key: the seller's hash in the high 64 bits, the session hash in the low ones. `version`: the state
-- holds the session's log rows inserted before it. `before_*`: the state the fold step that wrote the
-- entry started from (what a re-run of that step, or a report reading at that step's start, needs).
-- Entries are not expired (RocksDB's TTL drops entries at compaction time, not at a defined moment).
CREATE TABLE IF NOT EXISTS {db}.session_state
(
    key                 UInt128,
    version             DateTime('UTC'),
    start_hour          DateTime('UTC'),
    furthest            UInt8,
    categories          Array(String),
    offers              Array(String),
    had_before          UInt8,
    before_start_hour   DateTime('UTC'),
    before_furthest     UInt8,
    before_categories   Array(String),
    before_offers       Array(String)
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY key;

-- Per seller, UTC start hour, kind and item: how many sessions that started in that hour
-- - kind 'furthest', item '0'..'4': reached that funnel step as their furthest one
-- - kind 'category' / 'offer', item the slug / offer id: viewed it; checkout_sessions: and reached checkout.
-- Rows are signed deltas (a session that moves hour or reaches a further step is subtracted where it
-- was counted); their sums are exact. One row per fold step, seller_id '' and kind '', carries the
-- step's watermark in folded_to: every log row inserted before it is included. A step is one insert
-- (one part), so its deltas and its watermark become visible together.
CREATE TABLE IF NOT EXISTS {db}.session_sums
(
    seller_id          LowCardinality(String),
    kind               LowCardinality(String),
    start_hour         DateTime('UTC'),
    item               String,
    sessions           SimpleAggregateFunction(sum, Int64),
    checkout_sessions  SimpleAggregateFunction(sum, Int64),
    folded_to          SimpleAggregateFunction(max, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (seller_id, kind, start_hour, item)
TTL start_hour + INTERVAL {event_ttl_days} DAY DELETE WHERE kind != ''
SETTINGS non_replicated_deduplication_window = 1000;

-- The fold step's working set (the changed sessions with their old and new states), computed once per
-- step and read by both of its inserts; emptied at the start of every step.
CREATE TABLE IF NOT EXISTS {db}.session_fold_changes
(
    key             UInt128,
    seller_id       LowCardinality(String),
    had_old         UInt8,
    old_start       DateTime('UTC'),
    old_furthest    UInt8,
    old_categories  Array(String),
    old_offers      Array(String),
    new_start       DateTime('UTC'),
    new_furthest    UInt8,
    new_categories  Array(String),
    new_offers      Array(String)
)
ENGINE = Memory;
