"""The sessions agent's timers: reports of changed sums rows to the gauges agent, and the ticks that
drive expiry inside the stream (in order with each partition's events)."""

from __future__ import annotations

import msgspec

from streams import produce_guard
from streams import session_memory as memory
from streams.app import app, settings
from streams.clock import now_ms
from streams.topics import live_deltas, session_ticks

_json = msgspec.json.Encoder()
_row_dec = msgspec.json.Decoder(dict)


@app.timer(interval=0.1)
async def report_sums() -> None:
    """Send each changed (seller, partition) sums row to the gauges agent."""
    if not memory.dirty:
        return
    batch = list(memory.dirty.items())
    memory.dirty.clear()
    for (seller, partition), data in batch:
        row = _row_dec.decode(data)
        body = {"seller": seller, "p": partition, "seq": row["seq"], "v": row["v"], "r": row["r"]}
        await produce_guard.send(live_deltas, seller.encode(), _json.encode(body), "sums report")


@app.timer(interval=settings.tick_interval_s)
async def send_ticks() -> None:
    """One tick per partition: expiry runs inside the stream, in order with that partition's events."""
    body = _json.encode({"at": now_ms()})
    for p in range(settings.partitions):
        await session_ticks.send(value=body, partition=p)
