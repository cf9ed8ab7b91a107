"""A table recovery gets every changelog row also when a fetch outlives the rebalance that started it.

The drain loop is always inside a fetch: Faust's ``getmany`` asks aiokafka's ``Fetcher.fetched_records``
for up to 1 s. A rebalance that begins meanwhile suspends flow, and the fetch goes on: once the new
assignment is in, it took the records of every partition (the partitions Faust had active were all paused,
and aiokafka reads an empty set as "all"), including a changelog partition's rows fetched from where the
recovery had just sought it, and handed them to ``getmany``, which dropped them, flow being still
suspended. The recovery resumed flow a few event-loop turns after its seek; aiokafka's position was past
those rows, nothing seeks a changelog again during a recovery, so it waited for them for ever ("No event
received for active tp ... since recovery start", the CI flake of
``test_streams_live.py::test_counts_stay_exact_while_workers_join_and_die_mid_stream``), or, had more rows
followed, restored the table without them.

The window is forced with hooks, on a real broker and a real rebalance (the member rejoins its group): the
fetch under way when the rebalance begins takes its records only once the recovery has sought its
changelog, and the recovery resumes flow only once that fetch is back in ``getmany``."""

from __future__ import annotations

import asyncio
import threading
import time

from confluent_kafka import Producer

from livemetrics.kafka_config import producer_config
from livemetrics.settings import TABLE_NAMES
from livemetrics.topics import create_topics
from streams import fastpath
from streams.app import create_app

ROWS = 50


def test_a_recovery_gets_every_changelog_row_when_a_fetch_outlives_the_rebalance(make_settings):
    s = make_settings(partitions=1)
    create_topics(s)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(s)
    topic = app.topic(s.topic("page-events"), key_type=bytes, value_type=bytes)
    table = app.Table(TABLE_NAMES[0], key_type=bytes, value_type=bytes, default=None)
    installed = asyncio.Event()

    async def handler(messages: list) -> None:
        raise AssertionError("no raw event is produced in this test")

    @app.agent(topic)
    async def fast(stream):
        fastpath.install(app, topic.topics, handler)
        installed.set()
        async for _ in stream:
            raise AssertionError("a message took Faust's per-message path")

    hold = threading.Event()  # the next fetch (in the consumer's thread) rejoins the group and waits for the seek
    sought = threading.Event()  # the recovery after the rejoin has sought its changelog partitions
    back = asyncio.Event()  # that fetch is back in Faust's getmany
    taken: list[int] = []  # what it took from aiokafka's buffer

    def arm() -> None:
        consumer = app.consumer
        thread = consumer._thread
        fetcher = thread._consumer._fetcher
        fetched_records = fetcher.fetched_records

        async def held_fetched_records(partitions, timeout=0, max_records=None):  # in the consumer's thread
            if hold.is_set():
                hold.clear()
                thread._consumer._coordinator.request_rejoin()  # a real rebalance begins, through the broker
                await asyncio.get_running_loop().run_in_executor(None, sought.wait, 60)
            return await fetched_records(partitions, timeout=timeout, max_records=max_records)

        fetcher.fetched_records = held_fetched_records
        getmany, seek_wait = consumer._getmany, consumer.seek_wait

        async def held_getmany(active_partitions, timeout):
            held = not back.is_set() and not sought.is_set()
            if held:
                hold.set()
            records = await getmany(active_partitions=active_partitions, timeout=timeout)
            if held:
                taken.extend(r.offset for rs in records.values() for r in rs)
                back.set()  # getmany goes on at once: it drops the records if flow is still suspended
            return records

        async def held_seek_wait(partitions):
            await seek_wait(partitions)
            if hold.is_set() or back.is_set():
                return  # not the recovery the held fetch waits for
            sought.set()
            await asyncio.wait_for(back.wait(), 60)

        consumer._getmany, consumer.seek_wait = held_getmany, held_seek_wait

    async def run() -> None:
        await app.start()
        try:
            await asyncio.wait_for(installed.wait(), 60)
            await asyncio.wait_for(app.tables.recovery.completed.wait(), 60)  # the first assignment's
            # Rows another owner wrote meanwhile: the next recovery has to read them.
            p = Producer(producer_config(s))
            for i in range(ROWS):
                p.produce(table.changelog_topic_name, key=b"k%d" % i, value=b"v%d" % i, partition=0)
            assert p.flush(30) == 0
            arm()
            await asyncio.wait_for(back.wait(), 60)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (app.in_recovery or len(table.data.data) < ROWS):
                await asyncio.sleep(0.1)  # polls the recovery's progress (no event says "table complete")
            stats = app.tables.recovery.active_stats()
            assert not app.in_recovery, f"recovery still waiting after 20 s: {stats}; the held fetch took {taken}"
        finally:
            await app.stop()

    asyncio.run(run())
    assert sought.is_set() and app.consumer_generation_id > 1  # the held fetch met a real rebalance's recovery
    assert taken == []  # it took nothing while flow was suspended: the rows came to the recovery after its resume
    assert table.data.data == {b"k%d" % i: b"v%d" % i for i in range(ROWS)}
