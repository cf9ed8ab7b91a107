-- The rows of the sink's insert of raw-topic messages into events (clickhouse/events_json.py): ClickHouse parses
-- the events itself, which costs a fraction of decoding them into columns in Python.
-- Every column is named as in events: embedded, this SELECT turns the lines into a Native block that is
-- then inserted by name; a server runs it inside the insert. Either way the insert is
-- sink_events_unseen.sql, which keeps only the events not stored yet (clickhouse/events_json.py).
-- Input: one JSONCompactEachRow line per Kafka message,
--   [line number, topic, partition, offset, the message value (the event as the gateway encoded it)].
-- The event's objects are read as named tuples: unknown keys are ignored, missing keys and nulls give
-- the default, free-form JSON (items, details) is kept as its raw text, amounts are read exactly as decimals
-- (a decimal string, or a number from before money was decimal); the column values are those of
-- livemetrics.contract.COLUMNS (a test compares them). A checkout always has a total, so a null total
-- means "no checkout". The WHERE clause refuses the batch (the sink then skips the values that are not
-- events, see events_json.unusable) when
-- - an event lacks a field the contract requires (the nullable ones), or
-- - its rows are not exactly its lines, in order: a value holding more than one JSON document (the
--   gateway never writes one) cannot add rows with made-up Kafka positions. {rows} is the number of lines.
SELECT
    assumeNotNull(e.event_id) AS event_id, assumeNotNull(e.type) AS type, assumeNotNull(e.seller_id) AS seller_id,
    assumeNotNull(e.session_id) AS session_id,
    fromUnixTimestamp64Milli(assumeNotNull(e.ts), 'UTC') AS ts,
    fromUnixTimestamp64Milli(assumeNotNull(e.received_at), 'UTC') AS received_at,
    e.page.type AS page_type, e.page.category AS category, e.page.offer_id AS offer_id, e.page.path AS path,
    if(e.checkout.total IS NULL, e.payment.items, e.checkout.items) AS items,
    if(e.checkout.total IS NULL, e.payment.amount, assumeNotNull(e.checkout.total)) AS total,
    if(e.checkout.total IS NULL, e.payment.currency, e.checkout.currency) AS currency,
    e.payment.method AS payment_method, e.payment.order_id AS order_id, e.payment.error_code AS error_code,
    e.payment.error_message AS error_message, e.payment.details AS error_details,
    e.customer.email AS customer_email, e.customer.phone AS customer_phone, e.customer.name AS customer_name,
    e.ip AS ip, e.ip_hash AS ip_hash, e.user_agent AS user_agent, e.browser AS browser, e.os AS os,
    e.device AS device, e.is_bot AS is_bot, e.backfill AS backfill,
    kafka_topic, kafka_partition, kafka_offset
FROM input('line UInt32, kafka_topic String, kafka_partition UInt16, kafka_offset UInt64, e Tuple(
    event_id Nullable(UUID), type Nullable(String), seller_id Nullable(String), session_id Nullable(String),
    ts Nullable(Int64), received_at Nullable(Int64), seq UInt32,
    page Tuple(type String, category String, offer_id String, path String),
    checkout Tuple(items String, total Nullable(Decimal(18, 4)), currency String),
    payment Tuple(method String, amount Decimal(18, 4), currency String, order_id String, error_code String,
                  error_message String, details String, items String),
    customer Tuple(email String, phone String, name String),
    ip String, ip_hash String, user_agent String, browser String, os String, device String,
    is_bot Bool, backfill Bool, source String)')
WHERE NOT throwIf(e.event_id IS NULL OR e.type IS NULL OR e.seller_id IS NULL OR e.session_id IS NULL
                  OR e.ts IS NULL OR e.received_at IS NULL, 'an event lacks a required field')
  AND NOT throwIf(line != rowNumberInAllBlocks() OR line >= {rows}, 'a message value is not exactly one event')
