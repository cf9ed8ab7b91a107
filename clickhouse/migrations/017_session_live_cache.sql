-- The session reports' live part, computed once and shared (clickhouse/session_live_cache.py,
-- docs/clickhouse.md "Reports"): for one seller and fold watermark, every session with session_updates rows
-- labelled since the watermark in the parts up to a block number (`blocks`), with its state as of the
-- watermark (`old_*`) and with those rows (`new_*`), and what they add to the folded counts per kind, start
-- hour and item. A report adds these and only the sessions of the parts inserted (or merged) since.
-- A cache: Memory tables (lost on a restart, with the registry that names them: a report then fills
-- again); a fill is used only through its registry row, written last.
CREATE TABLE IF NOT EXISTS {db}.session_live_fills
(
    seller_id   String,
    watermark   UInt32,
    join_id     String,
    blocks      UInt64,
    fill        UInt64,
    made        DateTime64(3, 'UTC')
)
ENGINE = Memory;

CREATE TABLE IF NOT EXISTS {db}.session_live_states
(
    fill            UInt64,
    session         UInt64,
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

CREATE TABLE IF NOT EXISTS {db}.session_live_deltas
(
    fill                UInt64,
    kind                String,
    start_hour          DateTime('UTC'),
    item                String,
    sessions            Int64,
    checkout_sessions   Int64
)
ENGINE = Memory;
