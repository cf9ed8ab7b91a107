"""A batch path from Faust's consumer to the sessions agent's code, past Faust's per-message machinery.

Faust hands every fetched message, one by one, to the topic conductor (``asyncio.wait`` on two new
tasks per message in ``Consumer._drain_messages``, an ``Event``, a channel queue), then the stream
(``_c_aiter``, processors, ack). On this machine that is ~150 us of CPU per message, a ceiling of
~5,500 events/s for a worker that does nothing else (measured: docs/live-semantics.md), far below
issue 4's 20,000. ``install`` replaces the consumer's drain loop (the same loop, copied from
``faust/transport/consumer.py`` 0.15.3) with one that collects the messages of the given topics
from each fetch into a list and passes the list to ``handler`` (awaited in the fetcher task), then
acknowledges them; messages of every other topic take Faust's usual path.

What stays as in Faust: the consumer group, the assignment (and so the tables' changelog partitions),
table recovery (source partitions stay paused until the tables have caught up), read offsets and
gaps, acknowledgements (``Consumer.ack``: offsets are committed only for handled messages),
``broker_commit_every``, and rebalances: the batch's messages are tracked as unacknowledged, so a
revocation waits (``Consumer.wait_empty``) until the handler has finished with them; a batch that
is cancelled is not acknowledged and is processed again (at-least-once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Handler = Callable[[list], Awaitable[None]]


def install(app: Any, topics: Iterable[str], handler: Handler) -> bool:
    """Route the messages of ``topics`` to ``handler`` in batches; True if installed now."""
    consumer = app.consumer
    if getattr(consumer, "_fastpath_topics", None) is not None:
        return False
    consumer._fastpath_topics = frozenset(topics)

    async def _drain_messages(fetcher: Any) -> None:
        await _drain(consumer, fetcher, consumer._fastpath_topics, handler)

    consumer._drain_messages = _drain_messages
    return True


async def _drain(self: Any, fetcher: Any, fast: frozenset, handler: Handler) -> None:  # noqa: C901
    from faust.transport.consumer import CONSUMER_FETCHING

    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    unacked = self._unacked_messages
    ack = self.ack

    async def run(batch: list) -> None:
        try:
            await handler(batch)
        except BaseException:
            for m in batch:  # not handled: not acknowledged, processed again after a restart
                unacked.discard(m)
            raise
        for m in batch:
            ack(m)
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            ait = getmany(timeout=1.0)
            await self.sleep(0)
            batch: list = []
            if not self.should_stop:
                async for tp, message in ait:
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if message.topic in fast:
                            unacked.add(message)  # a revocation waits for it (wait_empty)
                            batch.append(message)
                        else:  # other topics: Faust's usual path (no order between topics to keep)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                if batch:
                    await run(batch)
                unset_flag(CONSUMER_FETCHING)
            else:
                await asyncio.sleep(0)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)
