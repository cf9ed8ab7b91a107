"""A broker SIGKILLed under the gateway's producer and a consumer made by ``kafka_config``: librdkafka's
failed connections (one every ~50 ms per client, to stderr, before) come as a few throttled log records
per client (``livemetrics/kafka_logs.py``), the first failure among them; the gateway logs the outage as
the sink, the live feed and the notifier do (``livemetrics/outage_log.py``): one ``gateway: lost Kafka
since T: why`` line at its first 503 and one ``gateway: Kafka back after N s (M failed tries)`` line at its
first acknowledgement after them, the 503s in between at debug; it delivers again within seconds of the
broker's return (reconnect backoff at most 1 s)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from livemetrics.kafka_config import admin_config, consumer_config
from livemetrics.kafka_logs import LOGGER_NAME
from livemetrics.settings import Settings
from producers.gateway.delivery import DeliveryUnavailable, KafkaDelivery
from tests.support.services import free_port, local_kafka

pytestmark = pytest.mark.integration

OUTAGE_S = 10.0  # the old code printed ~230 lines a minute per client: ~40-190 in this


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self, logger: str, level: int = logging.NOTSET) -> list[str]:
        return [r.getMessage() for r in self.records if r.name == logger and r.levelno >= level]


async def delivered_within(d: KafkaDelivery, topic: str, timeout: float) -> float | None:
    """Seconds until a send is acknowledged, sending again after each refusal (None: not within ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            await d.send([(topic, b"k", b"x")], 1)
            return time.monotonic() - start
        except DeliveryUnavailable:
            continue
    return None


async def outage(s: Settings, topic: str, broker, capfd, seen: Records) -> None:
    d = KafkaDelivery(s)
    c = Consumer(consumer_config(s, f"logs-{uuid.uuid4().hex[:6]}"))
    c.subscribe([topic])
    try:
        assert await delivered_within(d, topic, 30) is not None
        start = time.monotonic()
        while (m := c.poll(0.2)) is None or m.error() is not None:
            assert time.monotonic() - start < 60, "the consumer read nothing within 60 s"
        capfd.readouterr()
        seen.records.clear()
        os.killpg(broker.pid(), signal.SIGKILL)
        killed = time.monotonic()
        refused = asyncio.ensure_future(delivered_within(d, topic, OUTAGE_S - 2))  # a request during it: 503s
        while time.monotonic() - killed < OUTAGE_S:  # the consumer polled as its owners poll it
            c.poll(0)
            await asyncio.sleep(0.05)
        assert await refused is None
        stderr = capfd.readouterr().err
        raw = [line for line in stderr.splitlines() if "Connect to" in line]
        assert not raw, f"{len(raw)} librdkafka lines on stderr in {OUTAGE_S:.0f} s, e.g. {raw[:2]}"
        per_client = Counter(r.args[1] for r in seen.records if r.name == LOGGER_NAME)
        assert any("Connect to" in t for t in seen.texts(LOGGER_NAME)), (
            f"first failure not logged: {seen.texts(LOGGER_NAME)}"
        )
        assert len(per_client) == 2 and max(per_client.values()) <= 6, per_client
        lost = seen.texts("livemetrics.gateway", logging.INFO)
        assert len(lost) == 1, lost
        assert lost[0].startswith("gateway: lost Kafka since ") and "answering 503 until they are" in lost[0], lost
        await asyncio.to_thread(broker.start, wait_s=90, quiet=True)
        took = await delivered_within(d, topic, 30)
        assert took is not None and took < 3.0, f"first delivery {took} s after the broker answered"
        back = seen.texts("livemetrics.gateway", logging.INFO)[1:]
        assert len(back) == 1 and re.fullmatch(r"gateway: Kafka back after [\d.]+ s \(\d+ failed tries\)", back[0]), (
            back
        )
        tries = int(re.findall(r"\d+", back[0])[-1])
        again = [t for t in seen.texts("livemetrics.gateway") if t not in lost + back]
        assert tries >= 2 and len(again) == tries - 1, (tries, again[:3])  # every 503 counted, the others at debug
    finally:
        c.close()
        d.close(5)


def test_a_broker_outage_logs_a_few_lines_per_client_and_the_clients_reconnect_within_seconds(tmp_path, capfd):
    with local_kafka(tmp_path / "kafka") as (bootstrap, broker):
        s = Settings(kafka_bootstrap=bootstrap, delivery_timeout_ms=3000)
        topic = f"logs-{uuid.uuid4().hex[:6]}"
        admin = AdminClient(admin_config(s))
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        del admin  # an admin client's lines stay on stderr (nothing polls it): gone before the outage
        seen = Records()
        loggers = [logging.getLogger(LOGGER_NAME), logging.getLogger("livemetrics.gateway")]
        for logger in loggers:
            logger.addHandler(seen)
        level = loggers[1].level
        loggers[1].setLevel(logging.DEBUG)  # the 503s after the first are logged at debug: seen here too
        try:
            asyncio.run(outage(s, topic, broker, capfd, seen))
        finally:
            loggers[1].setLevel(level)
            for logger in loggers:
                logger.removeHandler(seen)


def test_the_gateways_topic_limit_reads_log_through_the_throttle_while_the_broker_is_away(capfd):
    """``topic_limits`` asks an admin client every minute: with its lines on stderr, each ask during an
    outage printed ~200 failed connections (measured: 194 in 10 s)."""
    from producers.gateway.topic_limits import TopicLimits

    seen = Records()
    logging.getLogger(LOGGER_NAME).addHandler(seen)
    try:
        capfd.readouterr()
        limits = TopicLimits(Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}"))  # nothing listens there
        assert not limits.refresh(timeout=3) and not limits.refresh(timeout=3)
        stderr = capfd.readouterr().err
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(seen)
    raw = [line for line in stderr.splitlines() if "Connect to" in line]
    assert not raw, f"{len(raw)} librdkafka lines on stderr, e.g. {raw[:2]}"
    assert 1 <= len(seen.texts(LOGGER_NAME)) <= 3, seen.texts(LOGGER_NAME)
