-- Popular categories / offers ({dim} = category | offer_id, {dims} = categories | offers): page views
-- in the range, and of the sessions that started in the range and viewed it, how many started checkout.
WITH toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end
SELECT s.item AS {dim}, v.views AS views, s.sessions AS sessions, s.checkout_sessions AS checkout_sessions,
       round(s.checkout_sessions / s.sessions, 4) AS conversion
FROM
(
    -- FINAL merges each session's partial rows on read (cheaper than GROUP BY session_id)
    SELECT item, count() AS sessions, countIf(checkout OR payment OR purchase) AS checkout_sessions
    FROM {db}.session_facts FINAL
    ARRAY JOIN {dims} AS item
    WHERE seller_id = {seller_id:String}
      AND toStartOfHour(first_at) >= range_start AND toStartOfHour(first_at) < range_end
    GROUP BY item
) AS s
LEFT JOIN
(
    SELECT {dim} AS item, sum(views) AS views
    FROM {db}.rollup_pages_hourly
    WHERE seller_id = {seller_id:String} AND page_type = {page_type:String}
      AND hour >= range_start AND hour < range_end
    GROUP BY item
) AS v ON v.item = s.item
ORDER BY views DESC, sessions DESC, {dim}
LIMIT 100
