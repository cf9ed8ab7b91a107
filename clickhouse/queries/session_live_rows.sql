-- Where a session report starts: the fold's watermark (as fold_watermark.sql reads it) and how many
-- session_updates rows of the seller were inserted since: what session_live.sql will read
-- (clickhouse/session_reports.py picks by it where that reads the folded states). One query for both
-- saves a round trip per report (~2 ms of ~70-90 with many live sessions).
WITH (SELECT max(folded_to) FROM {db}.session_sums WHERE seller_id = '' AND kind = '') AS lo
SELECT toUInt32(lo) AS watermark,
       (SELECT count() FROM {db}.session_updates WHERE seller_id = {seller_id:String} AND inserted >= lo) AS rows
