-- Where a session report starts, and its check at the end (which the seller's next report may start from):
-- the fold's watermark (the fragment fold_watermark.sql, its one
-- definition) and how many session_updates rows of the seller were inserted since: what session_live.sql
-- will read (clickhouse/session_reports.py picks by it where that reads the folded states). One query for
-- both saves a round trip per report (~2 ms of ~70-90 with many live sessions).
WITH ({fold_watermark}) AS lo
SELECT lo AS watermark,
       (SELECT count() FROM {db}.session_updates
        WHERE seller_id = {seller_id:String} AND inserted >= toDateTime(lo, 'UTC')) AS rows
