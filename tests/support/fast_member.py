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
from collections.abc import Awaitable, Callable
from pathlib import Path

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


def member_settings(s: Settings, data_dir: Path) -> str:
    """``LM_TEST_MEMBER_SETTINGS`` for another member of ``s``'s app: its broker, topics and group, its own data."""
    return json.dumps(
        {
            "kafka_bootstrap": s.kafka_bootstrap,
            "topic_prefix": s.topic_prefix,
            "app_id": s.app_id,
            "data_dir": str(data_dir),
            "store": s.store,
            "partitions": s.partitions,
            "worker_session_timeout_s": s.worker_session_timeout_s,
        }
    )


def fast_agent(app, topic, handler: Callable[[list], Awaitable[None]], on_start: Callable[[], None] | None = None):
    """Declares the app's one agent: ``topic``'s batches go to ``handler`` on the fast path, and a message on
    Faust's per-message path fails it. ``on_start`` runs in the agent once it has installed the fast path."""

    @app.agent(topic)
    async def fast(stream):
        from streams import fastpath

        fastpath.install(app, topic.topics, handler)
        if on_start is not None:
            on_start()
        async for _ in stream:
            raise AssertionError("a message took Faust's per-message path")

    return fast


def short_fetch_wait(app, s: Settings) -> bool:
    """The worker's own fetch wait (``worker_fetch_wait_ms``, which its sessions agent sets at its first
    batch) instead of Faust's 1,500 ms: each request the recovery makes (the changelogs' highwaters, then
    their offsets) waits on the broker behind the fetch in flight, ~3 s a recovery with Faust's. False while
    the app's aiokafka consumer does not exist yet."""
    from streams import faust_internals

    return faust_internals.set_fetch_wait(app.consumer, s.worker_fetch_min_bytes, s.worker_fetch_wait_ms)


def main() -> None:
    s = Settings(**json.loads(os.environ["LM_TEST_MEMBER_SETTINGS"]))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app, topic, _ = build(s)

    async def handler(messages: list) -> None:
        raise AssertionError("the other member is given no raw event")

    fast_agent(app, topic, handler)

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
