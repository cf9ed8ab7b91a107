"""The sessions agent's pushes and timers: reports of changed sums rows to the gauges agent as soon as a
batch wrote them (``sums_reports``: at most one round every ``REPORT_GAP_S``, ``streams/push_pacing.py``),
and the ticks that drive expiry inside the stream (in order with each partition's events)."""

from __future__ import annotations

import msgspec

from streams import produce_guard
from streams import session_memory as memory
from streams.app import app, settings
from streams.clock import now_ms
from streams.push_pacing import PushLoop
from streams.topics import live_deltas, session_ticks

_json = msgspec.json.Encoder()
_row_dec = msgspec.json.Decoder(dict)


# A round reports every row changed since the last one: batches come every few ms under load, and each
# round costs live-deltas messages, gauges and minute-rates changelog rows, and wakes the worker's
# consumer (smaller fetches, smaller batches). 50 ms doubled the broker's produce requests at 5,000
# events/s against the old 100 ms timer; 100 ms keeps that timer's bound and sends the first change at once.
REPORT_GAP_S = 0.1


async def report_sums() -> None:
    """Send each changed (seller, partition) sums row to the gauges agent."""
    from streams.agents import gauges  # imported by the worker before this runs (app.py)

    for seller, partition, data in memory.unreported_rows.take():
        row = _row_dec.decode(data)
        body = {"seller": seller, "p": partition, "seq": row["seq"], "v": row["v"], "r": row["r"]}
        if await produce_guard.send(live_deltas, seller.encode(), _json.encode(body), "sums report") is not None:
            # Counted in the seller's snapshots now if this worker publishes them: not after the report's
            # trip back through the broker and this worker's fetches (agents/gauges.py).
            gauges.report_ahead(seller, partition, {"seq": row["seq"], "v": row["v"], "r": row["r"]})


# Marked by the sessions agent after each batch's rows are written.
sums_reports: PushLoop[str] = PushLoop(REPORT_GAP_S, lambda _due: report_sums())


@app.task
async def _push_sums_reports() -> None:
    await sums_reports.run()


@app.timer(interval=settings.tick_interval_s)
async def send_ticks() -> None:
    """One tick per partition: expiry runs inside the stream, in order with that partition's events."""
    body = _json.encode({"at": now_ms()})
    for p in range(settings.partitions):
        await session_ticks.send(value=body, partition=p)
