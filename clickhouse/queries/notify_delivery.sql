-- One delivery of one seller, with its body (redelivery sends it again).
SELECT seller_id, delivery_id, alert_id, alert_kind, channel_id, target, body, status, attempts, last_error,
       toUnixTimestamp64Milli(created_at) AS created_ms, toUnixTimestamp64Milli(next_at) AS next_ms
FROM {db}.notification_deliveries FINAL
WHERE seller_id = {seller_id:String} AND delivery_id = {delivery_id:String}
