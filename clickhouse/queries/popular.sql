-- Popular categories / offers ({dim} = category | offer_id, {kind} = category | offer): per item, the
-- page views in the range and the sessions that started in the range and viewed it: the folded counts
-- (session_sums up to the fold watermark fold_lo) plus the change of the sessions with rows since
-- (the fragment session_live.sql). One query: the parts run side by side; the first {rows} items by views
-- (docs/clickhouse.md, "Reports"). The folded counts and the page views of the whole UTC days
-- [days_from, days_to) inside the range come from the day sums (kind '{kind}_day', rollup_pages_daily), the
-- hours at the range's ends from the hourly ones (clickhouse/session_reports.py, day_span; migration 018).
WITH toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end,
     toDateTime({days_from:UInt32}, 'UTC') AS days_from,
     toDateTime({days_to:UInt32}, 'UTC') AS days_to
SELECT item, sum(views) AS views, sum(sessions) AS sessions, sum(checkout_sessions) AS checkout_sessions
FROM
(
    SELECT item, toUInt64(0) AS views, sum(sessions) AS sessions, sum(checkout_sessions) AS checkout_sessions
    FROM {db}.session_sums
    WHERE seller_id = {seller_id:String}
      AND (kind = '{kind}' AND (start_hour >= range_start AND start_hour < days_from
                                OR start_hour >= days_to AND start_hour < range_end)
           OR kind = '{kind}_day' AND start_hour >= days_from AND start_hour < days_to)
    GROUP BY item
    UNION ALL
    SELECT {dim} AS item, sum(views) AS views, toInt64(0) AS sessions, toInt64(0) AS checkout_sessions
    FROM {db}.rollup_pages_hourly
    WHERE seller_id = {seller_id:String} AND page_type = '{kind}'
      AND (hour >= range_start AND hour < days_from OR hour >= days_to AND hour < range_end)
    GROUP BY item
    UNION ALL
    SELECT {dim} AS item, sum(views) AS views, toInt64(0) AS sessions, toInt64(0) AS checkout_sessions
    FROM {db}.rollup_pages_daily
    WHERE seller_id = {seller_id:String} AND page_type = '{kind}' AND day >= days_from AND day < days_to
    GROUP BY item
    UNION ALL
    SELECT item, toUInt64(0) AS views, sessions, checkout_sessions FROM ({session_live})
)
GROUP BY item
HAVING sessions > 0
-- the report's rows only (clickhouse/session_reports.py orders the same way): a seller with a million
-- distinct offer ids sent every one of them to Python, ~2 s of the report's ~5 (BENCHMARKS.md)
ORDER BY views DESC, sessions DESC, item
LIMIT {rows}
-- the live part's join builds its hash table from the live sessions, as written (session_live.sql);
-- no JIT: compiling its expressions took ~100 ms inside the 3rd run of each form after a process start
-- (the p95 tails of the first report measured, BENCHMARKS.md), and saved nothing measurable afterwards
SETTINGS query_plan_join_swap_table = 'false', compile_expressions = 0, compile_aggregate_expressions = 0,
         compile_sort_description = 0
