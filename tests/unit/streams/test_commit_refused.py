"""What the worker's consumer counts as committed after a commit the broker did not take (streams/faust_internals.py,
``commit_only_accepted``), on a real Faust app and consumer that never connect: the commit itself
(``Consumer._commit``, aiokafka's) is replaced by one that answers as aiokafka's does, False for a commit refused
because the group rebalanced. Faust 0.15.3 recorded the refused offsets as committed all the same and had already
taken them off its list of acknowledged offsets, so nothing committed them again: a partition that got no more
messages kept its lag at the broker. On a broker: ``tests/integration/test_commit_refused.py``."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP

from livemetrics.settings import Settings
from streams import fastpath, faust_internals
from streams.app import create_app
from tests.support.services import free_port

TOPIC = "raw.page-events"
TP0, TP1 = TP(TOPIC, 0), TP(TOPIC, 1)


class Broker:
    """Stands in aiokafka's commit: answers each commit with the next of ``answers`` (True: taken) and keeps what it
    took, as the group's committed offsets."""

    def __init__(self, *answers: bool):
        self.answers, self.asked, self.committed = list(answers), [], {}

    async def commit(self, offsets) -> bool:
        self.asked.append(dict(offsets))
        taken = self.answers.pop(0) if self.answers else True
        if taken:
            self.committed.update(offsets)
        return taken


class Producer:
    async def flush(self) -> None:  # Faust flushes its own producer before each commit
        return None


def worker_consumer(tmp_path, broker: Broker):
    """A consumer set up as the worker's (its fast path installed), assigned TP0 and TP1, committing to ``broker``."""
    s = Settings(store="memory://", data_dir=tmp_path, app_id="commit-unit", kafka_bootstrap=f"127.0.0.1:{free_port()}")
    app = create_app(s)
    app.topics.acking_topics.add(TOPIC)
    app.producer = Producer()

    async def handler(messages: list) -> None:
        pass

    assert fastpath.install(app, [TOPIC], handler)
    consumer = app.consumer
    consumer.assignment = lambda: {TP0, TP1}  # aiokafka's assignment, read by Faust before each commit
    consumer._commit = broker.commit
    return consumer


def test_a_refused_commit_is_not_counted_as_committed_and_is_made_again_without_new_messages(tmp_path):
    broker = Broker(False)  # the first commit is refused ("already rebalanced"); the next ones are taken
    consumer = worker_consumer(tmp_path, broker)
    internals = faust_internals.DrainInternals(consumer)

    async def run() -> None:
        internals.ack(TP0, range(0, 10))
        assert await consumer.commit() is False
        # Not committed: the worker's own view says so, as the broker does.
        assert faust_internals.committed_offsets(consumer).get(TP0) is None
        # The next round (Faust's commit timer, every second) commits it, though no message came since.
        assert await consumer.commit() is True
        assert broker.committed == {TP0: 10}
        assert faust_internals.committed_offsets(consumer)[TP0] == 10
        # Later messages are committed as before.
        internals.ack(TP0, range(10, 15))
        assert await consumer.commit() is True
        assert broker.committed == {TP0: 15}

    asyncio.run(run())
    assert broker.asked == [{TP0: 10}, {TP0: 10}, {TP0: 15}]


def test_a_refused_commit_after_earlier_ones_goes_back_to_the_last_taken_offset(tmp_path):
    broker = Broker(True, False)
    consumer = worker_consumer(tmp_path, broker)
    internals = faust_internals.DrainInternals(consumer)

    async def run() -> None:
        internals.ack(TP0, range(0, 10))
        internals.ack(TP1, range(0, 3))
        assert await consumer.commit() is True
        internals.ack(TP0, range(10, 20))
        assert await consumer.commit() is False  # refused: TP0 stays at 10
        assert faust_internals.committed_offsets(consumer) == {TP0: 10, TP1: 3}
        internals.ack(TP0, range(20, 25))  # a message after the refusal: committed with the refused ones
        assert await consumer.commit() is True
        assert broker.committed == {TP0: 25, TP1: 3}
        assert await consumer.commit() is False  # nothing new: nothing asked
        assert faust_internals.committed_offsets(consumer) == {TP0: 25, TP1: 3}

    asyncio.run(run())
    assert broker.asked == [{TP0: 10, TP1: 3}, {TP0: 20}, {TP0: 25}]


def test_a_commit_refused_across_a_rebalance_leaves_the_offsets_to_the_broker(tmp_path):
    """A commit in flight when a rebalance begins ends inside the revocation, which had already dropped every
    partition's bookkeeping (Faust revokes every partition at a rebalance): Faust wrote the refused offset back after
    that, and the next assignment's seek keeps it where the broker has no committed offset, so the records read
    again from the partition's start were not acknowledged (below the 'committed' offset) and never committed."""
    broker = Broker(False)
    consumer = worker_consumer(tmp_path, broker)
    internals = faust_internals.DrainInternals(consumer)
    commit = broker.commit

    async def refused_during_a_rebalance(offsets) -> bool:
        consumer.app.on_rebalance_start()  # what aiokafka's rebalance listener calls first
        for tp in (TP0, TP1):  # what Consumer.on_partitions_revoked drops before the app waits for the commit
            for bookkeeping in (consumer._acked, consumer._acked_index, consumer._committed_offset):
                bookkeeping.pop(tp, None)
        return await commit(offsets)

    consumer._commit = refused_during_a_rebalance

    async def run() -> None:
        internals.ack(TP0, range(0, 10))
        assert await consumer.commit() is False
        assert faust_internals.committed_offsets(consumer).get(TP0) is None
        # The partition comes back; the broker has no committed offset for it, so reading starts again at 0.
        internals.ack(TP0, range(0, 10))
        consumer._commit = commit
        assert await consumer.commit() is True
        assert broker.committed == {TP0: 10}

    asyncio.run(run())


def test_the_commit_path_is_wrapped_once(tmp_path):
    consumer = worker_consumer(tmp_path, Broker())
    assert faust_internals.commit_only_accepted(consumer) is False  # fastpath.install did


@pytest.mark.parametrize("failure", [RuntimeError("changelog rows not delivered"), asyncio.CancelledError()])
def test_a_commit_that_raises_puts_nothing_back(tmp_path, failure):
    """The changelog hook raises when rows were not delivered: the offsets of those events must not be committed by
    a later round (the worker exits and processes them again), as with Faust alone: nothing is put back, and a later
    acknowledgement does not commit past them (tests/integration/test_fastpath_changelog.py, on a broker)."""
    broker = Broker()
    consumer = worker_consumer(tmp_path, broker)
    internals = faust_internals.DrainInternals(consumer)
    commit = broker.commit

    async def failing(offsets) -> bool:
        raise failure

    async def run() -> None:
        internals.ack(TP0, range(0, 10))
        assert await consumer.commit() is True
        internals.ack(TP0, range(10, 20))
        consumer._commit = failing
        with pytest.raises(type(failure)):
            await consumer.force_commit()
        consumer._commit = commit
        assert await consumer.commit() is False
        internals.ack(TP0, range(20, 22))
        assert await consumer.commit() is False
        assert broker.committed == {TP0: 10}

    asyncio.run(run())


def test_a_commit_discarded_for_a_partition_no_longer_assigned_is_not_put_back(tmp_path):
    broker = Broker()
    consumer = worker_consumer(tmp_path, broker)
    internals = faust_internals.DrainInternals(consumer)

    async def run() -> None:
        internals.ack(TP0, range(0, 10))
        consumer.assignment = lambda: {TP1}  # TP0 went to another worker: Faust discards its commit
        assert await consumer.commit() is False
        assert await consumer.commit() is False  # and does not try it again every round

    asyncio.run(run())
    assert broker.asked == []
    assert not consumer._acked[TP0]


def test_a_commit_refused_inside_a_revocation_puts_nothing_back(tmp_path):
    """The revocation's own commit (``Consumer.wait_empty``), of offsets acknowledged after the revocation dropped the
    partitions' bookkeeping, refused because the group went on without this worker: nothing is put back, the next
    assignment starts from the broker's committed offsets."""
    broker = Broker(False)
    consumer = worker_consumer(tmp_path, broker)
    internals = faust_internals.DrainInternals(consumer)

    async def run() -> None:
        consumer.app.on_rebalance_start()
        internals.ack(TP0, range(0, 10))
        assert await consumer.commit() is False
        assert faust_internals.committed_offsets(consumer).get(TP0) is None
        assert not consumer._acked[TP0]

    asyncio.run(run())
