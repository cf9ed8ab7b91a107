-- SERVER ONLY: what the application and analysts may do (never applied on embedded chdb). Apply once per
-- database after `livemetrics migrate`, with reader_role.sql, as an admin; deploy/clickhouse/access.sql
-- is this file and reader_role.sql rendered for the database `livemetrics` (python -m clickhouse.bi
-- deploy-sql). The livemetrics_app user itself is created with its password by the server's set-up
-- (deploy/compose.yaml: CLICKHOUSE_USER / CLICKHOUSE_PASSWORD from `livemetrics secrets init`), so no
-- password is written here. The profiles named here are in deploy/clickhouse/users.xml.
-- The application: the sink writes, the API reads, `livemetrics erase` deletes, migrations change the schema.
GRANT SELECT, INSERT, ALTER DELETE ON {db}.* TO livemetrics_app;
GRANT CREATE TABLE, CREATE VIEW, ALTER, DROP TABLE, DROP VIEW ON {db}.* TO livemetrics_app;
GRANT TRUNCATE ON {db}.session_fold_changes TO livemetrics_app;
-- Analysts: read-only SQL on raw events without the personal-data columns. A login gets this role
-- only with its seller's restrictive row policies (seller_access.sql, role livemetrics_analyst).
-- error_message is free text a sender writes, customers' emails and phones included: analysts read it
-- masked through bi_events (migration 012), not from events.
CREATE ROLE IF NOT EXISTS livemetrics_analyst SETTINGS PROFILE 'livemetrics_analyst';
GRANT SELECT(event_id, type, seller_id, session_id, ts, received_at, page_type, category, offer_id, path,
             items, total, currency, payment_method, order_id, error_code, ip_hash,
             browser, os, device, is_bot, backfill) ON {db}.events TO livemetrics_analyst;
GRANT SELECT ON {db}.bi_events TO livemetrics_analyst;
