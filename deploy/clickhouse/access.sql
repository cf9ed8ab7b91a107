-- ClickHouse users, roles and row policies for the many-machine topology. Run once as an admin
-- (clickhouse-client --multiquery < deploy/clickhouse/access.sql) after `livemetrics migrate`.
-- Not executed on the development machine (embedded chdb has no access control); see docs/deploy.md.

-- The application: the sink writes, the API reads; nothing else.
CREATE USER IF NOT EXISTS livemetrics_app IDENTIFIED WITH sha256_password BY 'change-me' SETTINGS PROFILE 'livemetrics_app';
GRANT SELECT, INSERT, ALTER DELETE ON livemetrics.* TO livemetrics_app;  -- ALTER DELETE: `livemetrics erase`
GRANT CREATE TABLE, CREATE VIEW, ALTER, DROP TABLE, DROP VIEW ON livemetrics.* TO livemetrics_app;  -- migrations (005 replaces a view)
GRANT TRUNCATE ON livemetrics.session_fold_changes TO livemetrics_app;  -- the session fold's scratch table

-- Analysts: read-only SQL on raw events, without personal data columns.
CREATE ROLE IF NOT EXISTS livemetrics_analyst SETTINGS PROFILE 'livemetrics_analyst';
GRANT SELECT(event_id, type, seller_id, session_id, ts, received_at, page_type, category, offer_id, path,
             items, total, currency, payment_method, order_id, error_code, error_message, ip_hash,
             browser, os, device, is_bot, backfill) ON livemetrics.events TO livemetrics_analyst;

-- A seller's own analyst sees only that seller's rows (row policy per seller).
CREATE USER IF NOT EXISTS analyst_acme_home IDENTIFIED WITH sha256_password BY 'change-me' DEFAULT ROLE livemetrics_analyst;
GRANT livemetrics_analyst TO analyst_acme_home;
CREATE ROW POLICY IF NOT EXISTS acme_home_only ON livemetrics.events
    FOR SELECT USING seller_id = 'acme-home' TO analyst_acme_home;
-- Row policies are permissive per user: the application user must keep seeing every row.
CREATE ROW POLICY IF NOT EXISTS app_all_rows ON livemetrics.events FOR SELECT USING 1 TO livemetrics_app;
