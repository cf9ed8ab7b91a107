-- The rows of the sink's insert of raw-topic messages into events (clickhouse/events_json.py): ClickHouse parses
-- the events itself, which costs a fraction of decoding them into columns in Python.
-- Every column is named as in events: embedded, this SELECT turns the lines into a Native block that is
-- then inserted by name; a server runs it inside the insert. Either way the insert is
-- sink_events_unseen.sql, which keeps only the events not stored yet (clickhouse/events_json.py).
-- Input: one JSONCompactEachRow line per Kafka message,
--   [line number, topic, partition, offset, the message value (the event as the gateway encoded it)].
-- The event is read as a named tuple of the fields some column of events holds ({event_structure},
-- derived from the contract: clickhouse/events_read.py): unknown keys are ignored, missing keys and nulls
-- give the default, free-form JSON (items, details) is kept as its raw text, amounts are read exactly as
-- decimals (a decimal string, or a number from before money was decimal). {select_columns} gives each
-- column its value as livemetrics.contract.STORED says (a test compares them with the contract's getters);
-- a column "from the first object the event has" tests that object's presence marker (a checkout always
-- has a total, so a null total means "no checkout"). The WHERE clause refuses the batch (the sink then
-- skips the values that are not events, see events_json.unusable) when
-- - an event lacks a field the contract requires ({required_missing}: those are read as Nullable), or
-- - its rows are not exactly its lines, in order: a value holding more than one JSON document (the
--   gateway never writes one) cannot add rows with made-up Kafka positions. {rows} is the number of lines.
-- Print the SELECT as run: python -c "from clickhouse import events_json; print(events_json.SELECT)"
SELECT
    {select_columns},
    kafka_topic, kafka_partition, kafka_offset
FROM input('line UInt32, kafka_topic String, kafka_partition UInt16, kafka_offset UInt64, e {event_structure}')
WHERE NOT throwIf({required_missing}, 'an event lacks a required field')
  AND NOT throwIf(line != rowNumberInAllBlocks() OR line >= {rows}, 'a message value is not exactly one event')
