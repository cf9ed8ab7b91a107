-- Popular categories / offers ({dim} = category | offer_id, {kind} = category | offer): page views in
-- the range, and of the sessions that started in the range and viewed it, how many started checkout.
-- Session counts: the folded sums up to the fold watermark plus what the rows inserted since change
-- (clickhouse/session_fold.py; docs/clickhouse.md, "Reports").
WITH toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end
SELECT s.item AS {dim}, v.views AS views, s.n_sessions AS sessions, s.n_checkout AS checkout_sessions,
       round(s.n_checkout / s.n_sessions, 4) AS conversion
FROM
(
    SELECT item, sum(sessions) AS n_sessions, sum(checkout_sessions) AS n_checkout
    FROM
    (
        SELECT item, sessions, checkout_sessions
        FROM {db}.session_sums
        WHERE seller_id = {seller_id:String} AND kind = '{kind}'
          AND start_hour >= range_start AND start_hour < range_end
        UNION ALL
        SELECT item, sessions_delta, checkout_sessions_delta
        FROM ({session_deltas})
        WHERE kind = '{kind}' AND start_hour >= range_start AND start_hour < range_end
    )
    GROUP BY item
    HAVING n_sessions > 0
) AS s
LEFT JOIN
(
    SELECT {dim} AS item, sum(views) AS views
    FROM {db}.rollup_pages_hourly
    WHERE seller_id = {seller_id:String} AND page_type = '{kind}'
      AND hour >= range_start AND hour < range_end
    GROUP BY item
) AS v ON v.item = s.item
ORDER BY views DESC, sessions DESC, {dim}
LIMIT 100
