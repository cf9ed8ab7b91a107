"""Run by ``test_minute_rates_rocksdb.py`` in a child process (one worker per process, and the unit tests'
worker has the memory store): builds the worker with the RocksDB store from ``LIVEMETRICS_*`` and prints
``ok`` when a recovered window is found, registered for expiry once and expired."""

from __future__ import annotations

import asyncio
import json

from livemetrics.settings import get_settings
from streams import faust_internals
from streams.app import build_worker


async def main() -> None:
    from streams import minute_rates
    from streams.agents import gauges

    now = gauges.now_ms()
    minute = now // 60_000 * 60_000
    old = minute - 2 * 3_600_000
    table, seller = minute_rates._table, "seller-r"
    p = gauges.partition_of(seller)
    db = faust_internals.partition_db(table.data, p)  # the partition's database, as an assignment opens it
    async with gauges.keep_gauges.test_context() as agent:
        report = {"seller": seller, "p": 0, "seq": 1, "v": {}, "r": {str(minute): {"page_views": 3}}}
        await agent.put(json.dumps(report).encode(), key=seller.encode(), partition=p)
    # What Faust's recovery puts into the database: the changelog's key and value bytes.
    db.put(json.dumps([seller, list(minute_rates.window_of(old))], separators=(",", ":")).encode(), b'{"checkouts": 1}')
    assert minute_rates.stored(seller, old) == {"checkouts": 1}
    assert minute_rates.register_recovered() == 1 and minute_rates.register_recovered() == 0
    await table._del_old_keys()  # Faust's periodic table cleanup, run once now
    assert minute_rates.stored(seller, old) is None
    assert minute_rates.last_hour(seller, now) == {str(minute): {"page_views": 3}}
    print("ok")


if __name__ == "__main__":
    build_worker(get_settings())
    asyncio.run(main())
