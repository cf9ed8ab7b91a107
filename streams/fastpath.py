"""A batch path from Faust's consumer to the sessions agent's code, past Faust's per-message machinery.

Faust hands every fetched message, one by one, to the topic conductor (``asyncio.wait`` on two new
tasks per message in ``Consumer._drain_messages``, an ``Event``, a channel queue), then the stream
(``_c_aiter``, processors, ack): a cost per message that capped a worker doing nothing else far below
the events/s it needs (BENCHMARKS.md, Profiling notes; docs/live-semantics.md). ``install`` replaces the consumer's drain loop (the same loop, copied from
``faust/transport/consumer.py`` 0.15.3; the consumer's private bookkeeping it needs comes through
``streams/faust_internals.py``) with one that collects the records of the given topics
from each fetch into a list and passes the list to ``handler`` (awaited in the fetcher task), then
acknowledges them; messages of every other topic take Faust's usual path, after the fetch's batch
(``_drain``), except the tables' changelogs, which go to Faust at once as they are read. The fetch is
Faust's ``getmany`` with its per-record part done per partition for these topics (``take``): the handler
gets aiokafka's records (no Faust message object each), the read offset, the highwater and the
acknowledgement are handled once per partition of a fetch, and one entry in Faust's unacknowledged set
stands for the whole batch: in the whole stack at 15,000 events/s Faust's per-message path was ~19 % of
the worker's CPU (BENCHMARKS.md).

What stays as in Faust: the consumer group, the assignment (and so the tables' changelog partitions),
table recovery (source partitions stay paused until the tables have caught up), read offsets and
gaps, acknowledgements (``Consumer.ack``'s bookkeeping: offsets are committed only for handled messages),
``broker_commit_every``, and rebalances: the batch is tracked as unacknowledged, so a
revocation waits (``Consumer.wait_empty``) until the handler has finished with it; a batch that
is cancelled is not acknowledged and is processed again (at-least-once). Two changes under the loop: Faust's
fetch takes nothing from aiokafka's buffer while flow is suspended (``faust_internals.FetchScope``), so a table
recovery cannot lose the changelog rows it waits for (docs/live-semantics.md, Rebalances and table recovery);
and a commit the broker did not take is not counted as committed, so the next round makes it again
(``faust_internals.commit_only_accepted``; docs/live-semantics.md, A commit the broker refused)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from streams import faust_internals

Handler = Callable[[list[Any]], Awaitable[None]]
FETCH_TIMEOUT_S = 0.2  # how long one fetch waits for records (Faust's loop: 1 s)

_installed: weakref.WeakSet[Any] = weakref.WeakSet()  # consumers whose drain loop is this module's


def install(app: Any, topics: Iterable[str], handler: Handler) -> bool:
    """Route the messages of ``topics`` to ``handler`` in batches; True if installed now."""
    consumer = app.consumer
    if consumer in _installed:
        return False
    _installed.add(consumer)
    fast = frozenset(topics)

    async def drain(fetcher: Any) -> None:
        await _drain(consumer, faust_internals.DrainInternals(consumer, fetcher), fast, handler)

    faust_internals.replace_drain(consumer, drain)
    # A fetch takes nothing from aiokafka's buffer while flow is suspended (a rebalance, the start of a
    # recovery): taken then, Faust's getmany drops it, and a table recovery could wait for ever for the
    # changelog rows so dropped (faust_internals.FetchScope).
    faust_internals.scope_fetches(consumer)
    # A commit the broker did not take (refused at a rebalance, or raised) is not counted as committed and is made
    # again at the next round, with no new message (faust_internals.commit_only_accepted).
    faust_internals.commit_only_accepted(consumer)
    return True


class Batch:
    """The records of ``fast`` topics one fetch took, as aiokafka made them (``ConsumerRecord``: ``topic``,
    ``partition``, ``offset``, ``value``, ...; the handler reads no more), partition by partition in offset
    order, with the offsets taken of each partition (to acknowledge) and the one entry in Faust's
    unacknowledged set that stands for all of them (a revocation waits for it)."""

    __slots__ = ("records", "taken", "in_flight")

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.taken: list[tuple[Any, range]] = []  # (TP, offsets taken), offsets consecutive
        self.in_flight: faust_internals.InFlight | None = None


async def handle_batch(internals: faust_internals.DrainInternals, batch: Batch, handler: Handler) -> None:
    """Hand ``batch``'s records to ``handler``, then acknowledge them (per partition, as ``Consumer.ack``
    does per message) and commit if ``broker_commit_every`` is reached; if the handler raises (or is
    cancelled), none is acknowledged, so none is committed: they are processed again after a restart or
    by the next owner. The batch stays in Faust's unacknowledged set until then."""
    try:
        await handler(batch.records)
    except BaseException:
        _untrack(internals, batch)  # a revocation must not wait for messages nobody handles now
        raise
    for tp, offsets in batch.taken:
        internals.ack(tp, offsets)
    _untrack(internals, batch, acked=True)
    if internals.commit_due():
        await internals.consumer.commit()


def _untrack(internals: faust_internals.DrainInternals, batch: Batch, acked: bool = False) -> None:
    if batch.in_flight is not None:
        batch.in_flight.acked = acked
        internals.unacked.discard(batch.in_flight)


def take(internals: faust_internals.DrainInternals, tp: Any, records: list[Any], batch: Batch) -> list[tuple[int, int]]:
    """Add to ``batch`` the records of one partition of a fetch that Faust's drain loop would hand on, and
    move the read offset past them; return the gaps (first, last offset) Faust would record (for a topic
    with acks). Faust's rule, per record: a record below the last offset read is a duplicate and skipped
    (one at the last offset read is taken again); a jump of more than one over a read offset above 0 is a
    gap. Records of one partition come in increasing offsets, usually consecutive: then the whole list
    is taken at once."""
    read = internals.read_offset[tp]
    first, last = records[0].offset, records[-1].offset
    gaps: list[tuple[int, int]] = []
    if last - first + 1 == len(records) and (read is None or first >= read):  # the usual case
        if read and first - read > 1:
            gaps.append((read + 1, first))
        batch.records.extend(records)
        runs = [range(first, last + 1)]
    else:
        runs = []
        for record in records:
            offset = record.offset
            if read is None or offset >= read:
                if read and offset - read > 1:
                    gaps.append((read + 1, offset))
                batch.records.append(record)
                if runs and runs[-1].stop == offset:
                    runs[-1] = range(runs[-1].start, offset + 1)
                else:
                    runs.append(range(offset, offset + 1))
                read = offset
        if not runs:
            return gaps
    internals.read_offset[tp] = runs[-1].stop - 1
    batch.taken.extend((tp, r) for r in runs)
    if batch.in_flight is None:
        batch.in_flight = faust_internals.InFlight()
        internals.unacked.add(batch.in_flight)  # a revocation waits for it (wait_empty)
    batch.in_flight.size = len(batch.records)
    return gaps if internals.consumer.app.topics.acks_enabled_for(tp.topic) else []


async def _drain(
    consumer: Any, internals: faust_internals.DrainInternals, fast: frozenset[str], handler: Handler
) -> None:  # noqa: C901
    """Faust's ``Consumer._drain_messages`` with ``Consumer.getmany`` (0.15.3) inlined, with the records of
    ``fast`` topics taken per partition of each fetch (``take``: one read-offset update, one highwater and
    one acknowledgement per partition, no Faust message object and no unacknowledged-set entry per record)
    and passed to ``handle_batch``; ``self`` of the original is ``consumer``. Faust's ``getmany`` does per
    record what is done here per partition: flow and the consumer generation are checked (they change
    only while the loop awaits, and only fast records are taken without an await between them), the
    partition must be active (or buffered), the highwater is passed to the monitor. Faust's round-robin
    order between partitions within one fetch is not kept (the fold is per partition anyway); each
    partition's records stay in offset order. The fetch's messages of other topics are passed on to Faust
    after its batch, in their order, each as Faust's loop does (awaited, or abandoned once flow is
    suspended; none is held past the fetch, none dropped): Faust's per-message path costs ~1 ms a message,
    and the gauges agent's reports of a burst from 1,000 sellers held the fetch's raw events, so their
    alerts, for up to ~0.3 s (``bench alerts``). A fetch of only such messages still holds the next fetch's
    raw events. The tables' changelogs go to Faust at once as they are read: table recovery reads them,
    and moving them behind a batch would change what it waits for."""
    from faust.transport.consumer import CONSUMER_FETCHING

    app = consumer.app
    callback = consumer.callback
    consumer_should_stop = internals.consumer_stopping
    fetcher_should_stop = internals.fetcher_stopping
    get_read_offset = internals.read_offset.__getitem__
    set_read_offset = internals.read_offset.__setitem__
    set_flag, unset_flag = consumer.diag.set_flag, consumer.diag.unset_flag
    acks_enabled_for = app.topics.acks_enabled_for
    flow_suspended = consumer.suspend_flow.is_set
    changelogs = frozenset(app.tables.changelog_topics)
    buffered = internals.buffered
    highwater = consumer.highwater
    track_end_offset = app.monitor.track_tp_end_offset

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            # Faust waits up to 1 s; a fetch under way when a rebalance suspends flow takes nothing until
            # flow resumes and then may wait out its timeout before the next one takes what the recovery
            # needs (faust_internals.FetchScope): 0.2 s bounds that delay, for ~4 more fetches a second idle.
            await consumer.sleep(0)
            if consumer.should_stop:
                await asyncio.sleep(0)
                continue
            records, active, generation = await internals.fetch(FETCH_TIMEOUT_S)
            batch = Batch()
            others: list[Any] = []  # this fetch's messages of other topics, passed on after its batch
            for tp, recs in records.items():
                # As Faust's getmany before every record: past a suspension or a new generation (both come
                # only while this loop awaits) the rest of the fetch is dropped (a seek brings it back).
                if not consumer.flow_active or app.consumer_generation_id != generation:
                    break
                if not recs or not (active is None or tp in active or tp in buffered):
                    continue
                if tp.topic in fast:
                    track_end_offset(tp, highwater(tp))
                    for gap in take(internals, tp, recs, batch):
                        await internals.add_gap(tp, *gap)
                    continue
                for record in recs:  # other topics: Faust's per-message path, as its loop takes them
                    if not consumer.flow_active or app.consumer_generation_id != generation:
                        break
                    track_end_offset(tp, highwater(tp))
                    message = internals.to_message(tp, record)
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await internals.add_gap(tp, r_offset + 1, offset)
                        if message.topic in changelogs:  # what recovery reads: at once, as Faust does
                            if internals.commit_due():
                                await consumer.commit()
                            await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
                        else:  # other topics: Faust's path, after the batch (no order between topics to keep)
                            others.append(message)
                        set_read_offset(tp, offset)
                else:
                    continue
                break  # the inner loop broke: so does the fetch, as Faust's getmany
            if batch.records and flow_suspended():
                # A rebalance or a recovery began while the fetch was read: Faust hands no message on now,
                # and seeks every partition back to its committed offset before flow resumes, so these
                # come again. Handled now, they would fold into tables still being restored, and their
                # acknowledgement could commit them past them.
                _untrack(internals, batch)
            elif batch.records:
                await handle_batch(internals, batch, handler)
            for message in others:  # as Faust's own loop passes every message on
                if internals.commit_due():
                    await consumer.commit()
                await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
            unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            consumer.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            consumer.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        consumer.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)
