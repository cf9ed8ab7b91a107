-- The folded state of every session again, in memory: a ClickHouse Join table (a hash table by seller hash
-- and session hash, kept on disk and loaded when the table is), which the session reports' live part looks
-- the live sessions up in (session_live_join.sql) instead of passing over all the seller's rows of
-- session_folded (docs/clickhouse.md, "Reports"; BENCHMARKS.md, 2026-12-06, seventh round).
-- The newest row inserted for a key wins (join_any_take_last_row), as the newest row of session_folded does.
-- Not filled here: the fold fills it from session_folded (clickhouse/session_fold.py, sync_states_join)
-- when its marker row (key 0, 0: `version` = the watermark up to which it holds every entry, `categories`
-- = [a rebuild's id], `before_categories` = [the sessions it holds], checked against total_rows) is behind
-- the watermark or does not match, which an empty table is; until then reports read session_folded.
-- LIVEMETRICS_SESSION_STATES_IN_MEMORY=false keeps it empty.
-- ~170 bytes a session in memory, in the process that holds ClickHouse (the API with embedded chdb, or
-- the server), plus the older copies of sessions the fold rewrote until the next rebuild (daily, or once
-- they pile up: session_fold.JOIN_SLACK_BYTES).
-- The arrays are plain String, not LowCardinality as in session_folded: a lookup copies each found row's
-- arrays out of the block it was inserted with, and with LowCardinality every row's dictionary had to be
-- merged: 20,035 live sessions' offers 45 -> 21 ms of CPU, ~110 -> ~170 bytes a session (BENCHMARKS.md,
-- 2026-12-06, seventh round).
CREATE TABLE IF NOT EXISTS {db}.session_folded_join
(
    seller_hash         UInt64,
    session             UInt64,
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
ENGINE = Join(ANY, LEFT, seller_hash, session)
SETTINGS join_any_take_last_row = 1;
