"""The per-minute windowed table on the RocksDB store (in a child process: the worker's modules are
imported once per process, with one store): a window recovered from the changelog, as raw bytes in a
partition's database, is found under its (seller, window) key, registered for expiry once and
expired; the windows set since stay."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from livemetrics.settings import Settings

CHILD = textwrap.dedent("""
    import asyncio, json
    from streams.app import load_agents
    load_agents()
    from streams import minute_rates
    from streams.agents import gauges

    async def main():
        now = gauges.now_ms()
        minute = now // 60_000 * 60_000
        old = minute - 2 * 3_600_000
        table, seller = minute_rates._table, "seller-r"
        p = gauges.partition_of(seller)
        db = table.data._db_for_partition(p)  # the partition's database, as an assignment opens it
        async with gauges.keep_gauges.test_context() as agent:
            report = {"seller": seller, "p": 0, "seq": 1, "v": {}, "r": {str(minute): {"page_views": 3}}}
            await agent.put(json.dumps(report).encode(), key=seller.encode(), partition=p)
        # What Faust's recovery puts into the database: the changelog's key and value bytes.
        db.put(json.dumps([seller, list(minute_rates.window_of(old))], separators=(",", ":")).encode(),
               b'{"checkouts": 1}')
        assert minute_rates.stored(seller, old) == {"checkouts": 1}
        assert minute_rates.register_recovered() == 1 and minute_rates.register_recovered() == 0
        await table._del_old_keys()
        assert minute_rates.stored(seller, old) is None
        assert minute_rates.last_hour(seller, now) == {str(minute): {"page_views": 3}}
        print("ok")

    asyncio.run(main())
""")


def test_recovered_windows_on_rocksdb_are_found_registered_and_expired(tmp_path):
    env = Settings(store="rocksdb://", data_dir=tmp_path).child_env()
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        cwd=Path(__file__).parents[3],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout[-2000:] + out.stderr[-3000:]
