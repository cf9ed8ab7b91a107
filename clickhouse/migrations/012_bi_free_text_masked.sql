-- bi_events and bi_payment_errors (004) showed error_message as sent, and senders write customers into it
-- ("declined for ada@example.com"): BI logins get no personal data (docs/bi.md), so the two views now mask
-- it as the API masks it for a token without the personal-data right (api/privacy.py mask_text: each
-- email as its first letter, *** and its domain; each phone-like run of 6 or more digits, optionally
-- grouped by spaces, dots, dashes, slashes or brackets, as *** and its last two digits). Checked against
-- mask_text by tests/integration/test_clickhouse_bi_free_text.py. The regexes write ';' as x3B (a migration is split into
-- statements at every semicolon).
CREATE OR REPLACE VIEW {db}.bi_events AS
SELECT event_id, type, seller_id, session_id, ts, received_at, page_type, category, offer_id, path, items,
       total, currency, payment_method, order_id, error_code,
       replaceRegexpAll(
           replaceRegexpAll(error_message, '([^\\s@<>()\\[\\],\\x3B:"\'])[^\\s@<>()\\[\\],\\x3B:"\']*@([^\\s@<>()\\[\\],\\x3B:"\']+)', '\\1***@\\2'),
           '\\+?\\d(?:[\\s.\\-/()]*\\d){3,}[\\s.\\-/()]*(\\d)[\\s.\\-/()]*(\\d)', '*** \\1\\2') AS error_message,
       browser, os, device, is_bot, backfill
FROM {db}.events;

CREATE OR REPLACE VIEW {db}.bi_payment_errors AS
SELECT e.seller_id AS seller_id, e.alert_id AS alert_id, e.kind AS kind, e.at AS at, e.session_id AS session_id,
       e.order_id AS order_id, e.amount AS amount, e.currency AS currency, e.payment_method AS payment_method,
       e.error_code AS error_code,
       replaceRegexpAll(
           replaceRegexpAll(e.error_message, '([^\\s@<>()\\[\\],\\x3B:"\'])[^\\s@<>()\\[\\],\\x3B:"\']*@([^\\s@<>()\\[\\],\\x3B:"\']+)', '\\1***@\\2'),
           '\\+?\\d(?:[\\s.\\-/()]*\\d){3,}[\\s.\\-/()]*(\\d)[\\s.\\-/()]*(\\d)', '*** \\1\\2') AS error_message,
       if(s.status = '', 'open', s.status) AS status
FROM (SELECT * FROM {db}.payment_errors FINAL) AS e
LEFT JOIN (SELECT alert_id, argMax(status, updated_at) AS status FROM {db}.payment_error_status GROUP BY alert_id) AS s
    ON s.alert_id = e.alert_id;
