-- Popular categories / offers ({dim} = category | offer_id, {dims} = categories | offers): page views
-- in the range, and of the sessions that started in the range and viewed it, how many started checkout.
WITH toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end
SELECT s.item AS {dim}, v.views AS views, s.sessions AS sessions, s.checkout_sessions AS checkout_sessions,
       round(s.checkout_sessions / s.sessions, 4) AS conversion
FROM
(
    -- merge each session's partial rows, keep those that started in the range, one row per viewed item
    SELECT item, count() AS sessions, countIf(furthest >= 2) AS checkout_sessions
    FROM
    (
        SELECT min(first_hour) AS start_hour, max(furthest) AS furthest, groupUniqArrayArray({dims}) AS items
        FROM {db}.session_facts
        WHERE seller_id = {seller_id:String}
        GROUP BY session
        HAVING start_hour >= range_start AND start_hour < range_end
    )
    ARRAY JOIN items AS item
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
