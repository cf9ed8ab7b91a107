"""The fast path (``streams/fastpath.py``) on a real Faust app and consumer that never connect: a handled
batch is acknowledged (so Faust would commit past it), a batch whose handler fails or is cancelled is
not, and installing twice keeps the first. The drain loop itself reads from the broker:
``tests/integration/test_fastpath_changelog.py``."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP, Message

from livemetrics.settings import Settings
from streams import fastpath, faust_internals
from streams.app import create_app
from tests.support.services import free_port

TOPIC = "raw.page-events"


@pytest.fixture
def consumer(tmp_path):
    s = Settings(
        store="memory://", data_dir=tmp_path, app_id="fastpath-unit", kafka_bootstrap=f"127.0.0.1:{free_port()}"
    )
    app = create_app(s)
    app.topics.acking_topics.add(TOPIC)  # what the conductor does when an agent subscribes to the topic
    return app.consumer


def fetched(internals: faust_internals.DrainInternals, partition: int, offsets: range) -> list[Message]:
    """Messages as the drain loop collects them: each tracked as unacknowledged."""
    batch = [Message(TOPIC, partition, o, 0.0, 0, [], b"key", b"value", None) for o in offsets]
    for m in batch:
        internals.unacked.add(m)
    return batch


def next_offset_to_commit(consumer, partition: int) -> int | None:
    return consumer._new_offset(TP(TOPIC, partition))  # Faust's own computation of the commit


def test_a_handled_batch_is_acknowledged_and_committable(consumer):
    internals = faust_internals.DrainInternals(consumer)
    batch = fetched(internals, 0, range(5))
    seen: list[list[Message]] = []

    async def handler(messages: list) -> None:
        assert not any(m.acked for m in messages)  # nothing is acknowledged before the handler is done
        seen.append(list(messages))

    asyncio.run(fastpath.handle_batch(consumer, internals, batch, handler))
    assert seen == [batch]  # one call with the whole batch, in order
    assert all(m.acked for m in batch) and len(internals.unacked) == 0
    assert next_offset_to_commit(consumer, 0) == 5


@pytest.mark.parametrize("failure", [RuntimeError("boom"), asyncio.CancelledError()])
def test_a_batch_whose_handler_fails_is_not_acknowledged(consumer, failure):
    internals = faust_internals.DrainInternals(consumer)
    batch = fetched(internals, 1, range(10, 13))

    async def handler(messages: list) -> None:
        raise failure

    with pytest.raises(type(failure)):
        asyncio.run(fastpath.handle_batch(consumer, internals, batch, handler))
    assert not any(m.acked for m in batch)
    assert next_offset_to_commit(consumer, 1) is None  # processed again after a restart or by the next owner
    assert len(internals.unacked) == 0  # a revocation does not wait for messages nobody handles now


def test_commit_is_due_every_broker_commit_every_acks(tmp_path):
    s = Settings(
        store="memory://", data_dir=tmp_path, app_id="fastpath-unit-2", kafka_bootstrap=f"127.0.0.1:{free_port()}"
    )
    app = create_app(s)
    app.conf.broker_commit_every = 4
    app.topics.acking_topics.add(TOPIC)
    consumer = app.consumer
    internals = faust_internals.DrainInternals(consumer)
    for m in fetched(internals, 0, range(3)):
        consumer.ack(m)
    assert not internals.commit_due()
    consumer.ack(fetched(internals, 0, range(3, 4))[0])
    assert internals.commit_due() and not internals.commit_due()  # the count starts again


def test_install_keeps_the_first_routing(tmp_path):
    app = create_app(Settings(store="memory://", data_dir=tmp_path, app_id="fastpath-unit-3"))

    async def handler(messages: list) -> None:
        pass

    assert fastpath.install(app, [TOPIC], handler) is True
    assert fastpath.install(app, ["other"], handler) is False


def one_fetch(consumer, messages: list[Message]):
    """``getmany`` as the drain loop calls it, returning ``messages`` once; the consumer then stops, so
    the loop ends after handling that one fetch."""

    async def getmany(timeout: float):
        for m in messages:
            yield TP(m.topic, m.partition), m
        consumer._stopped.set()

    return getmany


@pytest.mark.parametrize("suspended", [False, True])
def test_nothing_is_handled_while_faust_has_flow_suspended(consumer, suspended):
    # A rebalance or recovery suspends flow; Faust then seeks back to the committed offsets, so the
    # messages of a fetch read meanwhile come again. Handled then, they would fold into tables still
    # being restored (and their acks could commit them past the recovery).
    messages = [Message(TOPIC, 2, o, 0.0, 0, [], b"key", b"value", None) for o in range(7, 10)]
    consumer.getmany = one_fetch(consumer, messages)
    (consumer.stop_flow if suspended else consumer.resume_flow)()
    seen: list[list[Message]] = []

    async def handler(batch: list) -> None:
        seen.append(list(batch))

    internals = faust_internals.DrainInternals(consumer)
    asyncio.run(fastpath._drain(consumer, internals, frozenset({TOPIC}), handler))
    if suspended:
        assert seen == [] and len(internals.unacked) == 0 and not any(m.acked for m in messages)
        assert internals.read_offset[TP(TOPIC, 2)] is None  # the seek decides where reading goes on
    else:
        assert seen == [messages] and all(m.acked for m in messages)
        assert internals.read_offset[TP(TOPIC, 2)] == 9


def test_raw_events_go_before_the_other_topics_of_their_fetch(consumer):
    # Faust's per-message path (the gauges agent's reports) costs ~1 ms a message: a fetch's raw events
    # no longer wait behind it. The others follow, in their order, as Faust's loop passes them on.
    others = [Message("p.live-deltas", 0, o, 0.0, 0, [], b"key", b"value", None) for o in range(3)]
    raw = [Message(TOPIC, 1, o, 0.0, 0, [], b"key", b"value", None) for o in range(2)]
    order: list[tuple[str, int]] = []

    async def getmany(timeout: float):
        for m in [others[0], raw[0], others[1], raw[1], others[2]]:
            yield TP(m.topic, m.partition), m
        consumer._stopped.set()  # the loop ends after this fetch

    async def to_faust(message) -> None:
        order.append(("faust", message.offset))

    async def wait_first(delivery, suspended) -> None:  # Faust's, on this test's event loop
        suspended.close()
        await delivery

    async def handler(batch: list) -> None:
        order.append(("batch", len(batch)))

    consumer.getmany, consumer.callback, consumer.wait_first = getmany, to_faust, wait_first
    consumer.resume_flow()
    asyncio.run(fastpath._drain(consumer, faust_internals.DrainInternals(consumer), frozenset({TOPIC}), handler))
    assert order == [("batch", 2), ("faust", 0), ("faust", 1), ("faust", 2)]


def test_a_changelog_message_goes_to_faust_at_once_and_is_never_dropped(consumer):
    # Table recovery reads the changelogs through this loop, and Faust seeks them only when a recovery
    # starts: one read and then dropped (as deferred messages of other topics are when flow is suspended)
    # would never come again, and the recovery would wait for it for ever (test_rebalance saw it).
    table = consumer.app.Table("fastpath-unit", default=None)
    changelog = table.changelog_topic.get_topic_name()
    assert changelog in consumer.app.tables.changelog_topics
    rows = [Message(changelog, 0, o, 0.0, 0, [], b"key", b"value", None) for o in range(2)]
    raw = [Message(TOPIC, 1, 0, 0.0, 0, [], b"key", b"value", None)]
    order: list[tuple[str, int]] = []
    fetches = 0

    async def getmany(timeout: float):
        nonlocal fetches
        fetches += 1
        if fetches == 1:
            for m in [rows[0], raw[0], rows[1]]:
                yield TP(m.topic, m.partition), m
        else:
            consumer._stopped.set()

    async def to_faust(message) -> None:
        order.append(("faust", message.offset))

    async def handler(batch: list) -> None:
        order.append(("batch", len(batch)))
        consumer.stop_flow()  # a rebalance begins while the batch is handled

    async def wait_first(delivery, suspended) -> None:
        suspended.close()
        await delivery

    consumer.getmany, consumer.callback, consumer.wait_first = getmany, to_faust, wait_first
    consumer.resume_flow()
    asyncio.run(fastpath._drain(consumer, faust_internals.DrainInternals(consumer), frozenset({TOPIC}), handler))
    assert order == [("faust", 0), ("faust", 1), ("batch", 1)]
