-- One page of a seller's payment-error history, newest first, with each alert's latest status.
-- {filters} is built by clickhouse.payment_errors from a fixed set of parameterised conditions.
SELECT e.*, if(s.status = '', 'open', s.status) AS status, s.note AS note, s.status_at AS status_at
FROM
(
    SELECT * FROM {db}.payment_errors FINAL
    WHERE seller_id = {seller_id:String} {event_filters}
) AS e
LEFT JOIN
(
    SELECT alert_id, argMax(status, updated_at) AS status, argMax(note, updated_at) AS note,
           max(updated_at) AS status_at
    FROM {db}.payment_error_status
    WHERE seller_id = {seller_id:String}
    GROUP BY alert_id
) AS s ON s.alert_id = e.alert_id
WHERE 1 {status_filter}
ORDER BY e.at DESC, e.alert_id DESC
LIMIT {limit:UInt32}
