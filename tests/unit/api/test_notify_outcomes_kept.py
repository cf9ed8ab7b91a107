"""Outcomes kept while ClickHouse is away (api/notify/outcomes.py) are bounded in bytes, not only in rows:
each carries its alert's body (up to ~33 KB for a browser key's payment failure), and a flood's refused
deliveries are outcomes too, so the 100,000 rows kept held ~3.3 GB of the notifier, not ~10 MB."""

from __future__ import annotations

import asyncio
import time

from api.notify import outcomes
from clickhouse import notify_deliveries
from clickhouse.notify_deliveries import Delivery
from livemetrics.settings import Settings


def _failed(n: int, size: int) -> Delivery:
    now_ms = int(time.time() * 1000)
    body = b'{"pad": "' + b"x" * (size - 11) + b'"}'
    return Delivery("flooded", f"dl_{n}", f"al-{n}", "payment_failed", "ch_1", "https://h.example/", body, now_ms).but(
        status="failed", last_error="not sent: this seller already owed ...", next_ms=now_ms
    )


def test_outcomes_kept_while_clickhouse_is_away_hold_at_most_their_bytes(monkeypatch):
    """Seen failing before the change: 300 rows of 32 KiB (9.4 MiB) kept against a 1-MiB bound."""
    tries: list[int] = []

    def away(_s, rows, _at):
        tries.append(len(rows))
        raise ConnectionError("ClickHouse is away")

    monkeypatch.setattr(notify_deliveries, "record", away)
    monkeypatch.setattr(outcomes, "KEEP_MAX_BYTES", 1 << 20, raising=False)  # raising: absent before the change
    body = 32 * 1024

    async def scenario():
        log = outcomes.OutcomeLog(Settings(dev_mode=True))
        try:
            log.add([_failed(n, body) for n in range(300)])
            await log.flush()
            kept, kept_bytes = len(log._retry), sum(len(d.body) for d in log._retry)
            newest = log._retry[-1].delivery_id
        finally:
            log._retry = []  # nothing to write at the close (ClickHouse is still away)
            await log.close()
        return kept, kept_bytes, newest

    kept, kept_bytes, newest = asyncio.run(scenario())
    assert tries and tries[0] == 300
    assert kept == 32 and kept_bytes == 32 * body, (kept, kept_bytes)  # the newest that fit 1 MiB
    assert newest == "dl_299"
