-- One seller's webhook deliveries, newest first; {status_filter} is '' or "AND status = {status:String}".
SELECT delivery_id, alert_id, alert_kind, channel_id, target, status, attempts, last_error,
       toUnixTimestamp64Milli(created_at) AS created_ms, toUnixTimestamp64Milli(next_at) AS next_ms,
       toUnixTimestamp64Milli(updated_at) AS updated_ms
FROM {db}.notification_deliveries FINAL
WHERE seller_id = {seller_id:String} {status_filter}
ORDER BY created_at DESC, delivery_id
LIMIT {limit:UInt32}
