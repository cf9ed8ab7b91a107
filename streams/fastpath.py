"""A batch path from Faust's consumer to the sessions agent's code, past Faust's per-message machinery.

Faust hands every fetched message, one by one, to the topic conductor (``asyncio.wait`` on two new
tasks per message in ``Consumer._drain_messages``, an ``Event``, a channel queue), then the stream
(``_c_aiter``, processors, ack): a cost per message that capped a worker doing nothing else far below
the events/s it needs (BENCHMARKS.md, Profiling notes; docs/live-semantics.md). ``install`` replaces the consumer's drain loop (the same loop, copied from
``faust/transport/consumer.py`` 0.15.3; the consumer's private bookkeeping it needs comes through
``streams/faust_internals.py``) with one that collects the messages of the given topics
from each fetch into a list and passes the list to ``handler`` (awaited in the fetcher task), then
acknowledges them; messages of every other topic take Faust's usual path, after the fetch's batch
(``_drain``), except the tables' changelogs, which go to Faust at once as they are read.

What stays as in Faust: the consumer group, the assignment (and so the tables' changelog partitions),
table recovery (source partitions stay paused until the tables have caught up), read offsets and
gaps, acknowledgements (``Consumer.ack``: offsets are committed only for handled messages),
``broker_commit_every``, and rebalances: the batch's messages are tracked as unacknowledged, so a
revocation waits (``Consumer.wait_empty``) until the handler has finished with them; a batch that
is cancelled is not acknowledged and is processed again (at-least-once). One change under the loop, to
Faust's fetch: it takes nothing from aiokafka's buffer while flow is suspended
(``faust_internals.FetchScope``), so a table recovery cannot lose the changelog rows it waits for
(docs/live-semantics.md, Rebalances and table recovery)."""

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
    fetch and passed to ``handle_batch``; ``self`` of the original is ``consumer``. The fetch's messages of
    other topics are passed on to Faust after its batch, in their order, each as Faust's loop does (awaited,
    or abandoned once flow is suspended; none is held past the fetch, none dropped): Faust's per-message
    path costs ~1 ms a message, and the gauges agent's reports of a burst from 1,000 sellers held the
    fetch's raw events, so their alerts, for up to ~0.3 s (``bench alerts``). A fetch of only such messages
    still holds the next fetch's raw events. The tables' changelogs go to Faust at once as they are read:
    table recovery reads them, and moving them behind a batch would change what it waits for."""
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
    changelogs = frozenset(consumer.app.tables.changelog_topics)

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            # Faust waits up to 1 s; a fetch under way when a rebalance suspends flow takes nothing until
            # flow resumes and then may wait out its timeout before the next one takes what the recovery
            # needs (faust_internals.FetchScope): 0.2 s bounds that delay, for ~4 more fetches a second idle.
            ait = getmany(timeout=FETCH_TIMEOUT_S)
            await consumer.sleep(0)
            batch: list[Any] = []
            others: list[Any] = []  # this fetch's messages of other topics, passed on after its batch
            if not consumer.should_stop:
                async for tp, message in ait:
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
                        else:  # other topics: Faust's path, after the batch (no order between topics to keep)
                            others.append(message)
                        set_read_offset(tp, offset)
                if batch and flow_suspended():  # suspended while the fetch was read: as above
                    for m in batch:
                        internals.unacked.discard(m)
                    batch = []
                if batch:
                    await handle_batch(consumer, internals, batch, handler)
                for message in others:  # as Faust's own loop passes every message on
                    if internals.commit_due():
                        await consumer.commit()
                    await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
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
