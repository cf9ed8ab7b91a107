-- The folded state of every session with a session_state entry, as a table sorted for the seller that the
-- session reports read instead of session_state (docs/clickhouse.md, "Reports"). A report needs the
-- folded state of every session with rows since the fold's watermark; looking each one up in
-- session_state cost a RocksDB read of a compressed block per level (~4-10 us a key, 10,000 late
-- sessions 60-100 ms), whereas one pass over the seller's keys here, reading the states of the sessions
-- it finds, cost about as much as the probe of session_seen alone did (BENCHMARKS.md, 2026-12-05).
-- Replaces session_seen (migration 010): it holds the same keys.
-- Invariant the reports rely on: for every session_state entry, its newest row here (the greatest
-- `version`) is that entry (the same state and before_* state). The fold writes every entry it changes
-- here after session_state and before committing its step's watermark (clickhouse/session_fold.py);
-- purge_states deletes a session's rows here before its entry. Older rows of a session wait for merges
-- (ReplacingMergeTree keeps the greatest version): the reports take the newest one themselves.
-- seller_hash and session: the high and low halves of session_state's key, two UInt64 rather than the
-- UInt128 key: a report's `session IN (...)` over a seller's million sessions took ~2/3 of the time.
CREATE TABLE IF NOT EXISTS {db}.session_folded
(
    seller_hash         UInt64,
    session             UInt64,
    version             DateTime('UTC'),
    start_hour          DateTime('UTC'),
    furthest            UInt8,
    categories          Array(LowCardinality(String)),
    offers              Array(LowCardinality(String)),
    had_before          UInt8,
    before_start_hour   DateTime('UTC'),
    before_furthest     UInt8,
    before_categories   Array(LowCardinality(String)),
    before_offers       Array(LowCardinality(String))
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (seller_hash, session);

-- The entries folded before this migration (the fold does not run while migrations are applied: the
-- sink migrates before it starts its fold thread; with a ClickHouse server, stop the sinks first). A
-- second copy (the migration run again) is merely a duplicate of the same version.
INSERT INTO {db}.session_folded (seller_hash, session, version, start_hour, furthest, categories, offers,
                                 had_before, before_start_hour, before_furthest, before_categories, before_offers)
SELECT toUInt64(bitShiftRight(key, 64)), toUInt64(bitAnd(key, 0xFFFFFFFFFFFFFFFF)), version, start_hour, furthest,
       categories, offers, had_before, before_start_hour, before_furthest, before_categories, before_offers
FROM {db}.session_state;

DROP TABLE IF EXISTS {db}.session_seen;
