"""Topics changed under a running reader, as the topic-watch tests change them (livemetrics/topic_watch.py):
settings whose readers look every second, an admin client kept alive, partitions added."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewPartitions

from livemetrics.kafka_config import admin_config
from livemetrics.settings import Settings


def watched(make_settings) -> tuple[Settings, AdminClient]:
    """Settings whose group-less readers check their topics every second, and an admin client for the test
    to keep alive to its end (librdkafka can abort when one closes mid-request, #3663)."""
    settings = make_settings(reader_topic_check_s=1.0)
    return settings, AdminClient(admin_config(settings))


def add_partitions(admin: AdminClient, topic: str, total: int) -> None:
    """Grow ``topic`` to ``total`` partitions; returns once the controller has done it."""
    for fut in admin.create_partitions([NewPartitions(topic, total)], operation_timeout=30).values():
        fut.result()
