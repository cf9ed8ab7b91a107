-- Popular categories / offers ({dim} = category | offer_id, {kind} = category | offer), folded part:
-- page views in the range, and the folded session counts of the sessions that started in the range
-- (session_sums up to the fold watermark; clickhouse/session_reports.py adds the sessions changed since,
-- keeps the items some session viewed, orders and cuts; docs/clickhouse.md, "Reports").
WITH toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end
SELECT if(s.item = '', v.item, s.item) AS item, v.views AS views,
       s.n_sessions AS sessions, s.n_checkout AS checkout_sessions
FROM
(
    SELECT item, sum(sessions) AS n_sessions, sum(checkout_sessions) AS n_checkout
    FROM {db}.session_sums
    WHERE seller_id = {seller_id:String} AND kind = '{kind}'
      AND start_hour >= range_start AND start_hour < range_end
    GROUP BY item
) AS s
FULL OUTER JOIN
(
    SELECT {dim} AS item, sum(views) AS views
    FROM {db}.rollup_pages_hourly
    WHERE seller_id = {seller_id:String} AND page_type = '{kind}'
      AND hour >= range_start AND hour < range_end
    GROUP BY item
) AS v ON v.item = s.item
