-- A fragment of popular.sql and funnel.sql (not a report), the live part from a fill
-- (clickhouse/session_live_cache.py) instead of session_live.sql over every live session: the fill's sums
-- for this report's {kind} and range (session_live_fill_deltas.sql: the live sessions of the parts up to
-- the fill's block number, as of the same watermark fold_lo), plus the change of the sessions with rows in
-- the parts newer than that (session_live.sql over the fragment live_sessions = session_live_inc.sql:
-- their state as of the fill, or as of the watermark when the fill does not hold them).
SELECT item, sessions, checkout_sessions
FROM {db}.session_live_deltas
WHERE fill = {fill:UInt64} AND kind = '{kind}'
  AND start_hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
  AND start_hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
UNION ALL
SELECT item, sessions, checkout_sessions FROM ({session_live_newer})
