"""A member of a test's Faust app in a process of its own (``python -m tests.support.holding_member``) that takes
partitions and never finishes with their records: its handler waits for ever, so it acknowledges and commits
nothing (``tests/integration/test_commit_refused.py``). The app is ``tests/support/fast_member.build``'s, with the
group's rebalance timeout of ``LM_TEST_REBALANCE_TIMEOUT_S``. Settings come as JSON in
``LM_TEST_MEMBER_SETTINGS``; it prints ``ready <n> <topic:partition> ...`` (its assignment) once its tables are
recovered with a non-empty assignment. End it with SIGKILL: a revocation would wait for its handler for ever."""

from __future__ import annotations

import asyncio
import json
import os

from livemetrics.settings import Settings
from tests.support.fast_member import build, fast_agent, short_fetch_wait


def main() -> None:
    s = Settings(**json.loads(os.environ["LM_TEST_MEMBER_SETTINGS"]))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app, topic, _ = build(s)
    app.conf.broker_rebalance_timeout = float(os.environ["LM_TEST_REBALANCE_TIMEOUT_S"])
    never = asyncio.Event()

    async def handler(messages: list) -> None:
        await never.wait()  # holds the records: nothing is acknowledged, nothing committed

    fast_agent(app, topic, handler)

    async def run() -> None:
        await app.start()
        fetch_wait = False
        while not (app.tables.actives_ready and app.consumer.assignment()):
            fetch_wait = fetch_wait or short_fetch_wait(app, s)
            await asyncio.sleep(0.05)  # polls the recovery (no event says "ready with partitions")
        held = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
        print("ready", len(held), " ".join(held), flush=True)
        await never.wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
