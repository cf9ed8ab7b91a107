-- The second half of a fill (clickhouse/session_live_cache.py; not a report): what the fill's sessions
-- (session_live_fill.sql) add to the folded counts, per kind ('furthest': the furthest step '0'..'4';
-- 'category', 'offer'), start hour and item: each session's contribution with the rows (`new_*`) minus its
-- contribution as of the watermark (`old_*`, when it had one), the arithmetic of session_deltas.sql and
-- session_live.sql. Items that add nothing are left out. (The fill's id is not aliased `fill`: the alias
-- would stand for the column in the WHERE.)
INSERT INTO {db}.session_live_deltas (fill, kind, start_hour, item, sessions, checkout_sessions)
SELECT {fill:UInt64} AS fill_id, c.1 AS kind, c.2 AS start_hour, c.3 AS item, sum(c.4) AS sessions,
       sum(c.5) AS checkout_sessions
FROM {db}.session_live_states
ARRAY JOIN arrayConcat(
    [('furthest', new_start, toString(new_furthest), toInt64(1), toInt64(0))],
    arrayMap(x -> ('category', new_start, x, toInt64(1), toInt64(new_furthest >= 2)), new_categories),
    arrayMap(x -> ('offer', new_start, x, toInt64(1), toInt64(new_furthest >= 2)), new_offers),
    if(had_old, arrayConcat(
        [('furthest', old_start, toString(old_furthest), toInt64(-1), toInt64(0))],
        arrayMap(x -> ('category', old_start, x, toInt64(-1), -toInt64(old_furthest >= 2)), old_categories),
        arrayMap(x -> ('offer', old_start, x, toInt64(-1), -toInt64(old_furthest >= 2)), old_offers)), [])
) AS c
WHERE fill = {fill:UInt64}
GROUP BY kind, start_hour, item
HAVING sessions != 0 OR checkout_sessions != 0
SETTINGS compile_expressions = 0, compile_aggregate_expressions = 0, compile_sort_description = 0
