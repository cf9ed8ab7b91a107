"""A batch path from Faust's consumer to the sessions agent's code, past Faust's per-message machinery.

Faust hands every fetched message, one by one, to the topic conductor (``asyncio.wait`` on two new
tasks per message in ``Consumer._drain_messages``, an ``Event``, a channel queue), then the stream
(``_c_aiter``, processors, ack): a cost per message that capped a worker doing nothing else far below
the events/s it needs (BENCHMARKS.md, Profiling notes; docs/live-semantics.md). ``install`` replaces the consumer's drain loop (the same loop, copied from
``faust/transport/consumer.py`` 0.15.3; the consumer's private bookkeeping it needs comes through
``streams/faust_internals.py``) with one that collects the messages of the given topics
from each fetch into a list and passes the list to ``handler`` (awaited in the fetcher task), then
acknowledges them; messages of every other topic take Faust's usual path, after the fetch's batch and at
most ``OTHERS_SLICE_S`` at a time before the next fetch (``_drain``), except the tables' changelogs, which
go to Faust at once as they are read (table recovery reads them, and nothing seeks them back).

What stays as in Faust: the consumer group, the assignment (and so the tables' changelog partitions),
table recovery (source partitions stay paused until the tables have caught up), read offsets and
gaps, acknowledgements (``Consumer.ack``: offsets are committed only for handled messages),
``broker_commit_every``, and rebalances: the batch's messages are tracked as unacknowledged, so a
revocation waits (``Consumer.wait_empty``) until the handler has finished with them; a batch that
is cancelled is not acknowledged and is processed again (at-least-once)."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from streams import faust_internals

Handler = Callable[[list[Any]], Awaitable[None]]

# Faust's per-message path costs ~1 ms a message (the gauges agent's reports, measured in ``bench alerts``):
# a burst of 1,000 sellers' reports held the raw events (and the alerts they make) behind it for up to
# ~0.7 s. They now wait for at most this much of it; the rest of those messages waits in order.
OTHERS_SLICE_S = 0.02
OTHERS_MAX = 2_000  # messages of other topics waiting: past this, no new fetch until they are passed on

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
    return True


async def handle_batch(
    consumer: Any, internals: faust_internals.DrainInternals, batch: list[Any], handler: Handler
) -> None:
    """Hand ``batch`` (its messages tracked as unacknowledged) to ``handler``, then acknowledge them and
    commit if ``broker_commit_every`` is reached; if the handler raises (or is cancelled), none is
    acknowledged, so none is committed: they are processed again after a restart or by the next owner."""
    try:
        await handler(batch)
    except BaseException:
        for m in batch:
            internals.unacked.discard(m)  # a revocation must not wait for messages nobody handles now
        raise
    ack = consumer.ack
    for m in batch:
        ack(m)
    if internals.commit_due():
        await consumer.commit()


async def _drain(
    consumer: Any, internals: faust_internals.DrainInternals, fast: frozenset[str], handler: Handler
) -> None:  # noqa: C901
    """Faust's ``Consumer._drain_messages`` (0.15.3), with the messages of ``fast`` topics collected per
    fetch and passed to ``handle_batch``; ``self`` of the original is ``consumer``. The other topics'
    messages are passed on to Faust after the batch, in their order, for ``OTHERS_SLICE_S`` before the next
    fetch (which waits for nothing while some are left): raw events never queue behind a burst of them.
    Those left when Faust suspends flow or a rebalance begins are dropped, as a fast message would be:
    Faust seeks back to the committed offsets before flow resumes, and they come again. Not so the
    tables' changelogs: Faust seeks them only when a recovery starts, so one dropped would never come
    again and the recovery would wait for it for ever; they go to Faust at once, as in Faust's loop."""
    from faust.transport.consumer import CONSUMER_FETCHING

    callback = consumer.callback
    getmany = consumer.getmany
    consumer_should_stop = internals.consumer_stopping
    fetcher_should_stop = internals.fetcher_stopping
    get_read_offset = internals.read_offset.__getitem__
    set_read_offset = internals.read_offset.__setitem__
    set_flag, unset_flag = consumer.diag.set_flag, consumer.diag.unset_flag
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    track_unacked = internals.unacked.add
    flow_suspended = consumer.suspend_flow.is_set
    app = consumer.app
    loop = asyncio.get_running_loop()
    others: deque[Any] = deque()  # read, not yet passed on to Faust (other topics)
    others_read_in = app.rebalancing_count  # the rebalance they were read after
    changelogs = frozenset(app.tables.changelog_topics)

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            fetch = len(others) < OTHERS_MAX
            ait = getmany(timeout=0 if others else 1.0) if fetch else None
            await consumer.sleep(0)
            batch: list[Any] = []
            if others and (flow_suspended() or app.rebalancing_count != others_read_in):
                others.clear()
            if not others:
                others_read_in = app.rebalancing_count
            if not consumer.should_stop:
                async for tp, message in ait or _nothing():
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await internals.add_gap(tp, r_offset + 1, offset)
                        if message.topic in fast:
                            if flow_suspended():
                                # A rebalance or a recovery: Faust hands no message on now, and seeks
                                # every partition back to its committed offset before flow resumes, so
                                # this one comes again. Handled now, it would fold into tables still
                                # being restored, and its acknowledgement could commit it past them.
                                continue
                            track_unacked(message)  # a revocation waits for it (wait_empty)
                            batch.append(message)
                        elif message.topic in changelogs:  # what recovery reads: at once, as Faust does
                            if internals.commit_due():
                                await consumer.commit()
                            await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
                        else:  # other topics: Faust's usual path, below (no order between topics to keep)
                            others.append(message)
                        set_read_offset(tp, offset)
                if batch and flow_suspended():  # suspended while the fetch was read: as above
                    for m in batch:
                        internals.unacked.discard(m)
                    batch = []
                if batch:
                    await handle_batch(consumer, internals, batch, handler)
                slice_ends = loop.time() + OTHERS_SLICE_S
                while others and not consumer.should_stop:
                    if flow_suspended() or app.rebalancing_count != others_read_in:
                        others.clear()  # they come again after Faust's seek (see above)
                        break
                    if internals.commit_due():
                        await consumer.commit()
                    await consumer.wait_first(callback(others.popleft()), consumer.suspend_flow.wait())
                    if loop.time() >= slice_ends:
                        break
                unset_flag(CONSUMER_FETCHING)
            else:
                await asyncio.sleep(0)
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


async def _nothing() -> AsyncIterator[tuple[Any, Any]]:  # an empty fetch, while the messages of other topics already read are passed on
    return
    yield
