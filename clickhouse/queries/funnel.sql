-- The checkout funnel: of the sessions that started in the range, how many reached each step as their
-- furthest (0 visit .. 4 purchase): the folded counts (session_sums up to the fold watermark fold_lo)
-- plus the change of the sessions with rows since (the fragment session_live.sql with kind
-- 'furthest'; docs/clickhouse.md, "Reports"). The whole UTC days [days_from, days_to) inside the range
-- from the day sums (kind 'furthest_day'), the hours at its ends from the hourly ones (popular.sql).
WITH toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end,
     toDateTime({days_from:UInt32}, 'UTC') AS days_from,
     toDateTime({days_to:UInt32}, 'UTC') AS days_to
SELECT toUInt8(item) AS furthest, sum(sessions) AS sessions
FROM
(
    SELECT item, sum(sessions) AS sessions
    FROM {db}.session_sums
    WHERE seller_id = {seller_id:String}
      AND (kind = 'furthest' AND (start_hour >= range_start AND start_hour < days_from
                                  OR start_hour >= days_to AND start_hour < range_end)
           OR kind = 'furthest_day' AND start_hour >= days_from AND start_hour < days_to)
    GROUP BY item
    UNION ALL
    SELECT item, sessions FROM ({session_live})
)
GROUP BY furthest
-- the live part's join builds its hash table from the live sessions, as written (session_live.sql);
-- no JIT: compiling its expressions took ~100 ms inside the 3rd run of each form after a process start
-- (the p95 tails of the first report measured, BENCHMARKS.md), and saved nothing measurable afterwards
SETTINGS query_plan_join_swap_table = 'false', compile_expressions = 0, compile_aggregate_expressions = 0,
         compile_sort_description = 0
