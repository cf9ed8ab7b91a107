-- Which Kafka log the offsets in sink_offsets were read from: the topic's id (a new one each time a topic
-- is created, so also when a topic is deleted and created again or the sink is pointed at another cluster
-- with the same topic names), per partition, as the sink last saw it at an assignment
-- (clickhouse/sink_logs.py). When a partition's topic id is not the one recorded, its stored offsets are
-- another log's: the sink forgets them and reads the new log from its start, instead of
-- resuming after an offset that, in the new log, skips every message below it.
-- The newest row of a partition wins (argMax on seen_at when read).
CREATE TABLE IF NOT EXISTS {db}.sink_logs
(
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    topic_id        String,
    seen_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(seen_at)
ORDER BY (kafka_topic, kafka_partition);
