-- The session fold's watermark: the newest fold's folded_to (0 before the first fold).
SELECT toUInt32(max(folded_to)) FROM {db}.session_sums WHERE seller_id = '' AND kind = ''
