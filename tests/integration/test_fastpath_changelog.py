"""The fast path and ``DirectChangelog`` together on a real broker, in a Faust app of their own (no agent
of the worker): the drain loop hands every fetched message of the topic to the handler once, in order per
partition and in batches; the handler writes one changelog row per message; the consumer commits each
partition's end only after those rows are delivered, and the store's persisted offset (where Faust's
recovery starts) is the last row's offset; the changelog holds exactly the rows, in order. While the rows
cannot be delivered, nothing is committed."""

from __future__ import annotations

import asyncio
import time

from confluent_kafka import Consumer, TopicPartition
from faust.types import TP

from livemetrics.kafka_config import consumer_config
from livemetrics.settings import TABLE_NAMES
from livemetrics.topics import create_topics
from streams import fastpath, faust_internals
from streams.app import create_app
from streams.changelog import ChangelogDeliveryError, DirectChangelog
from tests.support.kafka_write import writer
from tests.support.services import free_port

MESSAGES = 600


def produce(s, topic: str, partitions: int) -> None:
    p = writer(s)
    for i in range(MESSAGES):
        p.produce(topic, value=f"v{i}".encode(), key=f"k{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0


def broker_committed(s, topic: str) -> dict[int, int | None]:
    """The offsets the broker holds for the app's consumer group (Faust's group id is the app id)."""
    c = Consumer(consumer_config(s, s.app_id))
    tps = c.committed([TopicPartition(topic, p) for p in range(s.partitions)], timeout=10)
    c.close()
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in tps}


def changelog_rows(s, topic: str, partition: int, n: int) -> list[tuple[int, bytes, bytes | None]]:
    c = Consumer(consumer_config(s, f"{s.app_id}-check"))
    c.assign([TopicPartition(topic, partition, 0)])
    rows: list[tuple[int, bytes, bytes | None]] = []
    deadline = time.monotonic() + 30
    while len(rows) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            rows.append((m.offset(), m.key(), m.value()))
    c.close()
    return rows


def test_the_fast_path_hands_every_message_once_and_commits_after_its_changelog_rows(make_settings):
    s = make_settings(store="rocksdb://")
    create_topics(s)  # as `livemetrics worker` does (the source topic and the table's changelog)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    source = s.topic("page-events")
    produce(s, source, s.partitions)
    app = create_app(s)
    topic = app.topic(source, key_type=bytes, value_type=bytes)
    table = app.Table(TABLE_NAMES[0], key_type=bytes, value_type=bytes, default=None)
    log = DirectChangelog(table, s)
    batches: list[list[tuple[int, int]]] = []
    installed = asyncio.Event()

    async def handler(messages: list) -> None:
        batches.append([(m.partition, m.offset) for m in messages])
        for p in sorted({m.partition for m in messages}):
            log.write(p, [(f"{m.offset}".encode(), m.value) for m in messages if m.partition == p])

    @app.agent(topic)
    async def fast(stream):
        log.install_commit_hook(app)
        fastpath.install(app, topic.topics, handler)
        installed.set()
        async for _ in stream:  # messages fetched before the switch would come here: none in this test
            raise AssertionError("a message took Faust's per-message path")

    async def run() -> dict:
        await app.start()
        try:
            await asyncio.wait_for(installed.wait(), 60)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                committed = faust_internals.committed_offsets(app.consumer)
                if sum(committed.get(TP(source, p)) or 0 for p in range(s.partitions)) >= MESSAGES:
                    return committed
                await asyncio.sleep(0.2)
            raise AssertionError(f"committed {committed} after 90 s, handled {sum(map(len, batches))}")
        finally:
            await app.stop()
            log.close()

    committed = asyncio.run(run())
    per_partition = MESSAGES // s.partitions
    handled = [pm for b in batches for pm in b]
    assert sorted(handled) == [(p, o) for p in range(s.partitions) for o in range(per_partition)]  # each once
    for p in range(s.partitions):
        assert [o for q, o in handled if q == p] == list(range(per_partition))  # in order per partition
        assert committed[TP(source, p)] == per_partition  # the next offset to read: the partition's end
    assert broker_committed(s, source) == {p: per_partition for p in range(s.partitions)}
    assert max(map(len, batches)) > 1  # batches, not one message at a time
    changelog = table.changelog_topic_name
    for p in range(s.partitions):
        rows = changelog_rows(s, changelog, p, per_partition)
        assert [(k, v) for _, k, v in rows] == [
            (f"{o}".encode(), f"v{o * s.partitions + p}".encode()) for o in range(per_partition)
        ]
        # Faust's recovery of this partition would start after the last delivered row.
        assert table.data.persisted_offset(TP(changelog, p)) == rows[-1][0]


def test_nothing_is_committed_while_the_changelog_rows_are_not_delivered(make_settings):
    s = make_settings(broker_outage_tolerance_s=2.0)
    create_topics(s)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    source = s.topic("page-events")
    produce(s, source, s.partitions)
    app = create_app(s)
    topic = app.topic(source, key_type=bytes, value_type=bytes)
    table = app.Table(TABLE_NAMES[0], key_type=bytes, value_type=bytes, default=None)
    # The app reads and commits on the real broker; its changelog rows go to a closed port and fail after 2 s.
    log = DirectChangelog(table, s.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}))
    handled: list[int] = []
    failed = asyncio.Event()

    async def handler(messages: list) -> None:
        handled.extend(m.offset for m in messages)
        for p in sorted({m.partition for m in messages}):
            log.write(p, [(f"{m.offset}".encode(), m.value) for m in messages if m.partition == p])

    async def flush_or_record() -> None:
        try:
            await log.flush()
        except ChangelogDeliveryError:
            failed.set()
            raise

    @app.agent(topic)
    async def fast(stream):
        faust_internals.hook_commit(app.consumer, flush_or_record)  # log.install_commit_hook, observed
        fastpath.install(app, topic.topics, handler)
        async for _ in stream:
            raise AssertionError("a message took Faust's per-message path")

    async def run() -> None:
        await app.start()
        try:
            await asyncio.wait_for(failed.wait(), 60)  # a commit came, and its rows were not delivered
        finally:
            await app.stop()
            log.close(timeout=0)

    asyncio.run(run())
    assert len(handled) == MESSAGES
    assert broker_committed(s, source) == {p: None for p in range(s.partitions)}
