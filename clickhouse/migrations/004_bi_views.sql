-- Views for BI tools (Grafana, Metabase, Superset; docs/bi.md). They finalize the rollups' aggregate
-- states into plain numbers and leave personal data out, so analysts never need -Merge functions and
-- never see customer contacts. On a server, the read-only role of clickhouse/bi/ may read only these.

-- Raw events without personal data or Kafka bookkeeping.
CREATE VIEW IF NOT EXISTS {db}.bi_events AS
SELECT event_id, type, seller_id, session_id, ts, received_at, page_type, category, offer_id, path, items,
       total, currency, payment_method, order_id, error_code, error_message, browser, os, device, is_bot, backfill
FROM {db}.events;

-- Per seller and UTC hour: page views, distinct sessions with a page view, checkouts, purchases (no bots).
CREATE VIEW IF NOT EXISTS {db}.bi_traffic_hourly AS
SELECT seller_id, hour, sum(page_views) AS page_views, uniqMerge(sessions) AS sessions,
       sum(checkouts) AS checkouts, sum(purchases) AS purchases
FROM {db}.rollup_traffic_hourly
GROUP BY seller_id, hour;

-- Per seller, UTC hour, page type, category and offer: page views and distinct sessions (no bots).
CREATE VIEW IF NOT EXISTS {db}.bi_pages_hourly AS
SELECT seller_id, hour, page_type, category, offer_id, sum(views) AS views, uniqMerge(sessions) AS sessions
FROM {db}.rollup_pages_hourly
GROUP BY seller_id, hour, page_type, category, offer_id;

-- Per seller, UTC hour, payment method, error code and currency: payment outcomes and revenue.
CREATE VIEW IF NOT EXISTS {db}.bi_payments_hourly AS
SELECT seller_id, hour, payment_method, error_code, currency, sum(started) AS started,
       sum(succeeded) AS succeeded, sum(failed) AS failed, sum(revenue) AS revenue
FROM {db}.rollup_payments_hourly
GROUP BY seller_id, hour, payment_method, error_code, currency;

-- Payment-error alerts without customer contact or IP, with their latest status.
CREATE VIEW IF NOT EXISTS {db}.bi_payment_errors AS
SELECT e.seller_id AS seller_id, e.alert_id AS alert_id, e.kind AS kind, e.at AS at, e.session_id AS session_id,
       e.order_id AS order_id, e.amount AS amount, e.currency AS currency, e.payment_method AS payment_method,
       e.error_code AS error_code, e.error_message AS error_message,
       if(s.status = '', 'open', s.status) AS status
FROM (SELECT * FROM {db}.payment_errors FINAL) AS e
LEFT JOIN (SELECT alert_id, argMax(status, updated_at) AS status FROM {db}.payment_error_status GROUP BY alert_id) AS s
    ON s.alert_id = e.alert_id;
