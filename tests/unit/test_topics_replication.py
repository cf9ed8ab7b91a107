"""Topics take their replication from settings; a single broker's topics keep Kafka's defaults."""

from __future__ import annotations

import pytest

from livemetrics.settings import Settings
from livemetrics.topics import topic_specs
from operations.kafka_cluster import default_ports


def test_single_broker_topics_have_one_replica_and_no_replication_configs():
    for spec in topic_specs(Settings()):
        assert spec.replication_factor == 1
        assert "min.insync.replicas" not in spec.config and "unclean.leader.election.enable" not in spec.config


def test_replicated_topics_carry_min_isr_and_no_unclean_election():
    specs = topic_specs(Settings(replication_factor=3, min_insync_replicas=2))
    assert specs and all(t.replication_factor == 3 for t in specs)
    assert all(
        t.config["min.insync.replicas"] == "2" and t.config["unclean.leader.election.enable"] == "false" for t in specs
    )
    raw = next(t for t in specs if t.topic == "page-events")
    assert "retention.ms" in raw.config  # the topic's own configs are kept


def test_min_isr_above_replication_is_named():
    with pytest.raises(ValueError, match=r"min_insync_replicas \(3\) is more than replication_factor \(2\)"):
        topic_specs(Settings(replication_factor=2, min_insync_replicas=3))


def test_cluster_ports_step_by_two_from_the_bootstrap_or_follow_its_list():
    s = Settings(kafka_bootstrap="127.0.0.1:9092", kafka_controller_port=9093)
    assert default_ports(s, 3) == [(9092, 9093), (9094, 9095), (9096, 9097)]
    s = Settings(kafka_bootstrap="127.0.0.1:7001,127.0.0.1:7005,127.0.0.1:7009", kafka_controller_port=8001)
    assert default_ports(s, 3) == [(7001, 8001), (7005, 8003), (7009, 8005)]


def test_every_topic_with_a_retention_rolls_its_segments_hourly():
    # Kafka deletes a segment only once its newest record is past retention.ms, and rolls one after segment.ms
    # (7 days by default): without it a quiet PII topic kept customers' data ~8 days against its 24 h
    bounded = [t for t in topic_specs(Settings()) if "retention.ms" in t.config]
    assert {"page-events", "payment-events", "checkout-events", "payment-alerts", "dead-letter"} <= {
        t.topic for t in bounded
    }
    assert all(int(t.config["segment.ms"]) <= 3_600_000 for t in bounded), [
        (t.topic, t.config.get("segment.ms")) for t in bounded
    ]
