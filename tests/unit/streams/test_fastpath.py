"""The fast path (``streams/fastpath.py``) on a real Faust app and consumer that never connect: a handled
batch is acknowledged (so Faust would commit past it), a batch whose handler fails or is cancelled is
not, and installing twice keeps the first. The drain loop is fed fetches as Faust's ``_wait_next_records``
returns them ({TP: [aiokafka records]}); its per-partition shortcuts (one read-offset update, one
highwater and one acknowledgement per partition of a fetch, one unacknowledged-set entry per batch) are
checked against Faust's own per-message bookkeeping. The drain loop on a broker:
``tests/integration/test_fastpath_changelog.py``, ``tests/integration/test_fastpath_rebalance.py``."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.settings import Settings
from streams import fastpath, faust_internals
from streams.app import create_app
from tests.support.services import free_port

TOPIC = "raw.page-events"


def make_consumer(tmp_path, app_id: str = "fastpath-unit"):
    s = Settings(store="memory://", data_dir=tmp_path, app_id=app_id, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    app = create_app(s)
    app.topics.acking_topics.add(TOPIC)  # what the conductor does when an agent subscribes to the topic
    return app.consumer


@pytest.fixture
def consumer(tmp_path):
    return make_consumer(tmp_path)


def record(topic: str, partition: int, offset: int) -> ConsumerRecord:
    """A record as aiokafka's fetcher hands it to Faust."""
    return ConsumerRecord(topic, partition, offset, 0, 0, b"key", b"v%d" % offset, None, 3, 2, [])


def records(topic: str, partition: int, offsets) -> list[ConsumerRecord]:
    return [record(topic, partition, o) for o in offsets]


def fetched(internals: faust_internals.DrainInternals, partition: int, offsets: range) -> fastpath.Batch:
    """A batch as the drain loop takes it from one fetch (tracked as unacknowledged)."""
    batch = fastpath.Batch()
    assert fastpath.take(internals, TP(TOPIC, partition), records(TOPIC, partition, offsets), batch) == []
    return batch


def next_offset_to_commit(consumer, partition: int, topic: str = TOPIC) -> int | None:
    return consumer._new_offset(TP(topic, partition))  # Faust's own computation of the commit


def test_a_handled_batch_is_acknowledged_and_committable(consumer):
    internals = faust_internals.DrainInternals(consumer)
    batch = fetched(internals, 0, range(5))
    seen: list[list] = []

    async def handler(messages: list) -> None:
        assert next_offset_to_commit(consumer, 0) is None  # nothing is acknowledged before the handler is done
        assert len(internals.unacked) == 1  # one entry for the batch: a revocation waits for it
        seen.append(list(messages))

    asyncio.run(fastpath.handle_batch(internals, batch, handler))
    assert seen == [batch.records] and [r.offset for r in seen[0]] == [0, 1, 2, 3, 4]  # one call, in order
    assert len(internals.unacked) == 0
    assert next_offset_to_commit(consumer, 0) == 5


def test_every_partition_and_every_run_of_a_batch_is_acknowledged(consumer):
    # A batch holds the records of several partitions; a partition's records with holes in their offsets
    # (a compacted or transactional topic) are taken as runs of consecutive offsets, each acknowledged.
    internals = faust_internals.DrainInternals(consumer)
    batch = fastpath.Batch()
    for p, offsets in ((0, range(3)), (1, [0, 1, 5, 6, 9])):
        for gap in fastpath.take(internals, TP(TOPIC, p), records(TOPIC, p, offsets), batch):
            asyncio.run(internals.add_gap(TP(TOPIC, p), *gap))

    async def handler(messages: list) -> None:
        pass

    asyncio.run(fastpath.handle_batch(internals, batch, handler))
    assert [(t.partition, list(r)) for t, r in batch.taken] == [(0, [0, 1, 2]), (1, [0, 1]), (1, [5, 6]), (1, [9])]
    assert consumer._n_acked == 8 and sorted(consumer._acked[TP(TOPIC, 1)]) == [0, 1, 5, 6, 9]
    assert consumer._acked_index[TP(TOPIC, 1)] == {0, 1, 5, 6, 9} and next_offset_to_commit(consumer, 0) == 3


@pytest.mark.parametrize("failure", [RuntimeError("boom"), asyncio.CancelledError()])
def test_a_batch_whose_handler_fails_is_not_acknowledged(consumer, failure):
    internals = faust_internals.DrainInternals(consumer)
    batch = fetched(internals, 1, range(10, 13))

    async def handler(messages: list) -> None:
        raise failure

    with pytest.raises(type(failure)):
        asyncio.run(fastpath.handle_batch(internals, batch, handler))
    assert next_offset_to_commit(consumer, 1) is None  # processed again after a restart or by the next owner
    assert consumer._n_acked == 0
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
    for m in [Message(TOPIC, 0, o, 0.0, 0, [], b"key", b"value", None) for o in range(3)]:
        consumer.ack(m)
    assert not internals.commit_due()
    internals.ack(TP(TOPIC, 0), range(3, 4))  # a batch's acknowledgement counts as Faust's per message
    assert internals.commit_due() and not internals.commit_due()  # the count starts again
    assert internals.ack(TP(TOPIC, 0), range(2, 6)) == 2  # 2 and 3 were acknowledged already
    assert consumer._n_acked == 2


def test_install_keeps_the_first_routing(tmp_path):
    app = create_app(Settings(store="memory://", data_dir=tmp_path, app_id="fastpath-unit-3"))

    async def handler(messages: list) -> None:
        pass

    assert fastpath.install(app, [TOPIC], handler) is True
    assert fastpath.install(app, ["other"], handler) is False


class Fetches:
    """Faust's ``_wait_next_records`` as the drain loop awaits it: the given fetches ({TP: [records]}) one
    by one, with the partitions Faust has active (None: all); the consumer then stops, so the loop ends."""

    def __init__(self, consumer, *fetches: dict, active=None):
        self.consumer, self.fetches, self.active = consumer, list(fetches), active

    async def __call__(self, timeout: float):
        if not self.fetches:
            self.consumer._stopped.set()
            return {}, self.active
        return self.fetches.pop(0), self.active


def drain(consumer, fetches: Fetches, handler, **hooks) -> faust_internals.DrainInternals:
    internals = faust_internals.DrainInternals(consumer)
    internals.next_records = fetches
    hooks.setdefault("highwater", lambda tp: 0)  # the consumer thread's aiokafka consumer: not started here
    for name, value in hooks.items():
        setattr(consumer, name, value)
    asyncio.run(fastpath._drain(consumer, internals, frozenset({TOPIC}), handler))
    return internals


async def wait_first(delivery, suspended) -> None:  # Faust's, on the test's event loop
    suspended.close()
    await delivery


@pytest.mark.parametrize("suspended", [False, True])
def test_nothing_is_handled_while_faust_has_flow_suspended(consumer, suspended):
    # A rebalance or recovery suspends flow; Faust then seeks back to the committed offsets, so the
    # messages of a fetch read meanwhile come again. Handled then, they would fold into tables still
    # being restored (and their acks could commit them past the recovery).
    tp = TP(TOPIC, 2)
    fetch = {tp: records(TOPIC, 2, range(7, 10))}
    (consumer.stop_flow if suspended else consumer.resume_flow)()
    seen: list[list] = []
    seeks: list[bool] = []

    async def handler(batch: list) -> None:
        seen.append(list(batch))

    async def perform_seek() -> None:
        seeks.append(True)

    internals = drain(consumer, Fetches(consumer, fetch), handler, perform_seek=perform_seek)
    if suspended:
        assert seen == [] and len(internals.unacked) == 0 and next_offset_to_commit(consumer, 2) is None
        assert internals.read_offset[tp] is None  # the seek decides where reading goes on
        assert seeks == [True]  # as Faust's getmany: back to the committed offsets
    else:
        assert seen == [fetch[tp]] and next_offset_to_commit(consumer, 2) == 10 and seeks == []
        assert internals.read_offset[tp] == 9


def test_raw_events_go_before_the_other_topics_of_their_fetch(consumer):
    # Faust's per-message path (the gauges agent's reports) costs ~1 ms a message: a fetch's raw events
    # no longer wait behind it. The others follow, in their order, as Faust's loop passes them on.
    fetch = {TP("p.live-deltas", 0): records("p.live-deltas", 0, range(3)), TP(TOPIC, 1): records(TOPIC, 1, range(2))}
    order: list[tuple[str, int]] = []

    async def to_faust(message) -> None:
        assert isinstance(message, Message)  # Faust's path gets Faust's message, as from its getmany
        order.append(("faust", message.offset))

    async def handler(batch: list) -> None:
        order.append(("batch", len(batch)))

    consumer.resume_flow()
    drain(consumer, Fetches(consumer, fetch), handler, callback=to_faust, wait_first=wait_first)
    assert order == [("batch", 2), ("faust", 0), ("faust", 1), ("faust", 2)]


def test_a_changelog_message_goes_to_faust_at_once_and_is_never_dropped(consumer):
    # Table recovery reads the changelogs through this loop, and Faust seeks them only when a recovery
    # starts: one read and then dropped (as deferred messages of other topics are when flow is suspended)
    # would never come again, and the recovery would wait for it for ever (test_rebalance saw it).
    table = consumer.app.Table("fastpath-unit", default=None)
    changelog = table.changelog_topic.get_topic_name()
    assert changelog in consumer.app.tables.changelog_topics
    fetch = {TP(changelog, 0): records(changelog, 0, range(2)), TP(TOPIC, 1): records(TOPIC, 1, range(1))}
    order: list[tuple[str, int]] = []

    async def to_faust(message) -> None:
        order.append(("faust", message.offset))

    async def handler(batch: list) -> None:
        order.append(("batch", len(batch)))
        consumer.stop_flow()  # a rebalance begins while the batch is handled

    consumer.resume_flow()
    drain(consumer, Fetches(consumer, fetch), handler, callback=to_faust, wait_first=wait_first)
    assert order == [("faust", 0), ("faust", 1), ("batch", 1)]


def test_a_suspension_while_a_changelog_message_is_delivered_drops_the_fetch(consumer):
    # Delivering a changelog row awaits; a rebalance that suspends flow meanwhile makes Faust's getmany
    # drop the rest of the fetch, and the raw events already taken are not handled (the seek brings them
    # back), as when flow was suspended before the fetch.
    table = consumer.app.Table("fastpath-unit-2", default=None)
    changelog = table.changelog_topic.get_topic_name()
    raw0, raw1 = TP(TOPIC, 0), TP(TOPIC, 1)
    fetch = {raw0: records(TOPIC, 0, range(3)), TP(changelog, 0): records(changelog, 0, range(1))}
    fetch[raw1] = records(TOPIC, 1, range(4))
    seen: list[list] = []

    async def to_faust(message) -> None:
        consumer.stop_flow()

    async def handler(batch: list) -> None:
        seen.append(batch)

    consumer.resume_flow()
    internals = drain(consumer, Fetches(consumer, fetch), handler, callback=to_faust, wait_first=wait_first)
    assert seen == [] and len(internals.unacked) == 0 and next_offset_to_commit(consumer, 0) is None
    assert internals.read_offset[raw1] is None  # after the suspension nothing more was taken


def test_records_of_partitions_faust_has_not_active_are_not_taken(consumer):
    # As Faust's getmany: only partitions it has active (or buffered) are handed on.
    active, other = TP(TOPIC, 0), TP(TOPIC, 1)
    fetch = {active: records(TOPIC, 0, range(2)), other: records(TOPIC, 1, range(2))}
    seen: list[list] = []

    async def handler(batch: list) -> None:
        seen.append([(r.partition, r.offset) for r in batch])

    consumer.resume_flow()
    internals = drain(consumer, Fetches(consumer, fetch, active={active}), handler)
    assert seen == [[(0, 0), (0, 1)]] and internals.read_offset[other] is None
    assert next_offset_to_commit(consumer, 1) is None


def test_one_highwater_per_partition_per_fetch_reaches_the_monitor(consumer):
    # Faust's getmany asks the highwater (a call into the consumer thread's aiokafka consumer) and tells
    # the monitor for every record; the fast path does it once per partition of a fetch, with the same value.
    fetch = {TP(TOPIC, p): records(TOPIC, p, range(100 * p, 100 * p + 50)) for p in range(3)}
    asked: list[TP] = []

    def highwater(tp: TP) -> int:
        asked.append(tp)
        return 1000 + tp.partition

    async def handler(batch: list) -> None:
        assert len(batch) == 150

    consumer.resume_flow()
    drain(consumer, Fetches(consumer, fetch), handler, highwater=highwater)
    assert sorted(asked) == sorted(fetch)
    assert {tp: consumer.app.monitor.tp_end_offsets[tp] for tp in fetch} == {TP(TOPIC, p): 1000 + p for p in range(3)}


def test_a_revocation_waits_for_the_batch_and_is_woken_by_its_acknowledgement(consumer):
    # Faust's wait_empty loops while its unacknowledged set is not empty, dropping what is acked
    # (_clean_unacked_messages) and waiting on _waiting_for_ack, which an ack completes.
    internals = faust_internals.DrainInternals(consumer)
    batch = fetched(internals, 0, range(4))

    async def run() -> None:
        consumer._waiting_for_ack = waiting = asyncio.get_running_loop().create_future()

        async def handler(messages: list) -> None:
            consumer._clean_unacked_messages()  # what wait_empty does between its waits
            assert list(internals.unacked) == [batch.in_flight] and not waiting.done()
            assert repr(batch.in_flight) == "<InFlight batch of 4 records>"

        await fastpath.handle_batch(internals, batch, handler)
        assert waiting.done() and batch.in_flight.acked and len(internals.unacked) == 0

    asyncio.run(run())


offsets_st = st.lists(st.integers(0, 40), min_size=1, max_size=30, unique=True).map(sorted)


_pair: list = []  # two consumers for the property test, made once (a Faust app takes seconds to make)


@settings(max_examples=150, deadline=None)
@given(
    fetches=st.lists(offsets_st, min_size=1, max_size=4),
    read=st.none() | st.integers(0, 40),
    committed=st.none() | st.integers(0, 40),
    acked_before=st.lists(st.integers(0, 40), max_size=5, unique=True),
)
def test_take_and_ack_keep_fausts_bookkeeping(tmp_path_factory, fetches, read, committed, acked_before):
    """``take`` + ``DrainInternals.ack`` per partition leave the consumer's read offset, gaps, acknowledged
    offsets, ack count and next commit exactly as Faust's drain loop and ``Consumer.ack`` per message do,
    and hand on the same records in the same order (fetches in increasing offsets, with jumps; a read offset
    and a committed offset anywhere, some offsets acknowledged already)."""
    tp = TP(TOPIC, 0)
    if not _pair:
        _pair.extend(make_consumer(tmp_path_factory.mktemp("c"), f"fastpath-prop-{i}") for i in range(2))
    ours, faust = _pair
    for c in (ours, faust):
        for bookkeeping in (c._read_offset, c._committed_offset, c._gap, c._acked, c._acked_index):
            bookkeeping.clear()
        c._read_offset[tp], c._committed_offset[tp] = read, committed
        for o in acked_before:
            c.ack(Message(TOPIC, 0, o, 0.0, 0, [], b"k", b"v", None))
        c._n_acked = 0
    internals = faust_internals.DrainInternals(ours)
    handed: dict[str, list[int]] = {"ours": [], "faust": []}

    async def run() -> None:
        for offsets in fetches:
            recs = records(TOPIC, 0, offsets)
            batch = fastpath.Batch()
            for gap in fastpath.take(internals, tp, recs, batch):
                await internals.add_gap(tp, *gap)
            handed["ours"] += [r.offset for r in batch.records]
            for t, run_ in batch.taken:
                internals.ack(t, run_)
            # Faust 0.15.3's _drain_messages and Consumer.ack, per message:
            for rec in recs:
                message = faust._to_message(tp, rec)
                r_offset = faust._read_offset[tp]
                if r_offset is None or message.offset >= r_offset:
                    if message.offset - (r_offset or 0) > 1 and r_offset:
                        await faust._add_gap(tp, r_offset + 1, message.offset)
                    handed["faust"].append(message.offset)
                    faust._read_offset[tp] = message.offset
                    faust.ack(message)

    asyncio.run(run())
    assert handed["ours"] == handed["faust"]
    assert ours._read_offset[tp] == faust._read_offset[tp]
    assert sorted(ours._gap[tp]) == sorted(faust._gap[tp])
    assert sorted(ours._acked[tp]) == sorted(faust._acked[tp]) and ours._acked_index[tp] == faust._acked_index[tp]
    assert ours._n_acked == faust._n_acked
    assert ours._new_offset(tp) == faust._new_offset(tp)
