-- Page views and unique sessions per hour, in the seller's time zone.
SELECT
    toString(toStartOfHour(ts, {tz:String})) AS hour,
    count() AS page_views,
    uniqExact(session_id) AS sessions
FROM {db}.events
WHERE seller_id = {seller_id:String}
  AND type = 'page_view'
  AND NOT is_bot
  AND ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
GROUP BY hour
ORDER BY hour
