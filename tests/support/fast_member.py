"""A member of a test's Faust app in a process of its own (``python -m tests.support.fast_member``): the app
of ``tests/integration/test_fastpath_rebalance_empty.py`` (one raw topic on the fast path, one table), so
that the test's own app can have an empty assignment when a rebalance begins. Settings come as JSON in
``LM_TEST_MEMBER_SETTINGS``. It prints ``ready <partitions>`` once its tables are recovered with a
non-empty assignment, and leaves its group on SIGTERM. It must not be given raw events: its handler fails."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from livemetrics.settings import TABLE_NAMES, Settings


def build(s: Settings):
    """The app, its raw topic and its table (the same in the test's process and here)."""
    from streams.app import create_app

    app = create_app(s)
    # Each member notices a rebalance at its next heartbeat (create_app's: a quarter of the session timeout,
    # 2.5 s): the test waits for two, one when it joins and one when the other member leaves.
    app.conf.broker_heartbeat_interval = 0.5
    topic = app.topic(s.topic("page-events"), key_type=bytes, value_type=bytes)
    table = app.Table(TABLE_NAMES[0], key_type=bytes, value_type=bytes, default=None)
    return app, topic, table


def short_fetch_wait(app, s: Settings) -> bool:
    """The worker's own fetch wait (``worker_fetch_wait_ms``, which its sessions agent sets at its first
    batch) instead of Faust's 1,500 ms: each request the recovery makes (the changelogs' highwaters, then
    their offsets) waits on the broker behind the fetch in flight, ~3 s a recovery with Faust's. False while
    the app's aiokafka consumer does not exist yet."""
    from streams import faust_internals

    return faust_internals.set_fetch_wait(app.consumer, s.worker_fetch_min_bytes, s.worker_fetch_wait_ms)


def main() -> None:
    from streams import fastpath

    s = Settings(**json.loads(os.environ["LM_TEST_MEMBER_SETTINGS"]))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app, topic, _ = build(s)

    async def handler(messages: list) -> None:
        raise AssertionError("the other member is given no raw event")

    @app.agent(topic)
    async def fast(stream):
        fastpath.install(app, topic.topics, handler)
        async for _ in stream:
            raise AssertionError("a message took Faust's per-message path")

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await app.start()
        try:
            fetch_wait = False
            while not (app.tables.actives_ready and app.consumer.assignment()):
                fetch_wait = fetch_wait or short_fetch_wait(app, s)
                await asyncio.sleep(0.05)  # polls the recovery (no event says "ready with partitions")
            print("ready", len(app.consumer.assignment()), flush=True)
            await stop.wait()
        finally:
            await app.stop()

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
