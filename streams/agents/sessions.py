"""Session agent: folds raw events and timer ticks into session state, keeps per-(seller, partition)
sums rows (the sessions' contributions, per-minute rates and the highest offset counted per topic;
``streams/session_batch.py``) and turns every failed payment into one alert. The timers that report
changed rows to the gauges agent and send the expiry ticks are in ``streams/agents/session_timers.py``.

Crash safety. A SIGKILL can leave any prefix of a batch's changelog writes behind, so:
- alerts are delivered (acknowledged by Kafka) *before* the session that remembers the failure is
  written: a crash in between re-sends the alert on replay (same ``alert_id``), it never loses it;
- sessions are written before their sums rows; the rows' offset marks (rates, alerts) only land with
  the row, so a replay counts again exactly what was lost;
- after every assignment the gauges in each sums row are recomputed from the sessions' recorded
  contributions (``emitted``) and re-reported, so a row that missed its sessions' deltas is repaired and
  a report lost with a killed worker is sent again (``streams/session_memory.py::rebuild``).

Table writes bypass Faust's per-message producer path (``streams/changelog.py``): a batch's rows for
one partition go into the local store in one RocksDB write batch and, in the same order (sessions,
then sums rows), to the table's changelog partition through a confluent-kafka producer; offsets are
committed only once those rows are acknowledged."""

from __future__ import annotations

import asyncio
import gc

import msgspec

from streams import fastpath, faust_internals, session_batch
from streams import session_memory as memory
from streams.agents.session_timers import sums_reports
from streams.app import app, settings
from streams.in_flight import BatchesInFlight
from streams.tables import sessions_changelog
from streams.topics import payment_alerts, session_input

BATCH = 10_000

_json = msgspec.json.Encoder()
in_flight = BatchesInFlight()  # a revocation waits for the batch being handled (streams/in_flight.py)


class _FetchWait:
    set = False  # once the consumer's aiokafka consumer exists (it does when a batch comes)


async def handle(messages) -> None:
    """One batch of raw-event and tick messages: fold, deliver its alerts, then write its rows."""
    if not _FetchWait.set:  # fewer, fuller fetches: docs/architecture.md, Broker CPU
        _FetchWait.set = faust_internals.set_fetch_wait(
            app.consumer, settings.worker_fetch_min_bytes, settings.worker_fetch_wait_ms
        )
        if _FetchWait.set and settings.worker_idle_fetch_wait_ms:
            faust_internals.hold_idle_fetches(
                app.consumer,
                settings.worker_fetch_min_bytes,
                settings.worker_fetch_wait_ms,
                settings.worker_idle_fetch_wait_ms,
            )
    with in_flight.batch():
        # No cyclic GC from the fold to the end of the write: the batch's states, rows and keys (~10 objects
        # an event) live until then and are freed by refcount after it, so a collection in between only scans
        # them, promotes them and sets off the older generations' (7 % of the worker's CPU folding a backlog in
        # fetches of ~44,000 events, 0.2 % at fetches of ~1,000: BENCHMARKS.md, eighteenth session). None of
        # them is in a cycle; what the rest of the process makes meanwhile is collected once it is back on.
        gc_was = gc.isenabled()
        gc.disable()
        try:
            batches = session_batch.fold(messages)
            alerts = [a for b in batches for a in b.alerts]
            if alerts:
                if gc_was:  # the sends wait on the broker (for minutes in an outage): the loop runs on with its GC
                    gc.enable()
                sent = [await payment_alerts.send(key=a["seller_id"].encode(), value=_json.encode(a)) for a in alerts]
                await asyncio.gather(*sent)  # acknowledged before the sessions that remember them are written
                gc.disable()
            session_batch.write(batches)
            del batches  # freed now, while the GC is off: its next collection does not find them
        finally:
            if gc_was:
                gc.enable()
        sums_reports.mark("rows")  # report the changed sums rows now (coalesced: session_timers.py)
        # Backpressure: while the changelog producer's queue is full (the broker away) the next batch
        # waits here, with the event loop running, not in a blocking retry (streams/changelog.py).
        await sessions_changelog.room()


@app.agent(session_input)
async def track_sessions(stream):
    # Offsets are committed only once the changelog rows of the events they cover are acknowledged.
    sessions_changelog.install_commit_hook(app)
    # Raw events and ticks go from the consumer straight to ``handle`` in fetched batches
    # (streams/fastpath.py): Faust's per-message path is the worker's ceiling otherwise. This stream
    # then only sees what a fetch started before the switch delivered.
    fastpath.install(app, session_input.topics, handle)
    # Each batch allocates ~10 objects per event, almost all freed with the batch: the cyclic GC's
    # default thresholds made it rescan the worker's long-lived objects (Faust, aiokafka, modules)
    # many times per batch. Those are frozen out of its scans, and it runs less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    async for events in stream.take_events(BATCH, within=0.05):
        await handle([e.message for e in events])


@app.on_partitions_revoked.connect
async def _forget_deadlines(app_, revoked, **kwargs) -> None:
    # First the batch in flight, on every revocation (Faust waits for it only when the consumer's
    # assignment is not empty; streams/in_flight.py): its rows are written under the assignment it was
    # folded in. The memory goes with no await after that wait, so no batch is in flight when it does;
    # it is rebuilt from the table for whatever this worker owns next (the store may still hold keys of
    # partitions that moved away: they are never read for a partition this worker does not own).
    if in_flight.running:  # Faust did not wait: the case of docs/operations.md's weak point 1, now seen
        app.log.warning("a revocation found a sessions batch in flight (an empty assignment): waiting for it")
    await in_flight.idle(timeout=settings.broker_outage_tolerance_s)
    memory.forget()
    # Rows already produced go out before the partition is handed over (none may land after the next
    # owner's). A revocation right after a broker outage may find rows still waiting for it: they are
    # waited for as long as the producer holds them (streams/changelog.py).
    await sessions_changelog.flush(timeout=settings.broker_outage_tolerance_s)
