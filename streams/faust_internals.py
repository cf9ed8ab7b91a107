"""Every Faust internal ``streams/`` uses, behind small named functions: no other module touches a
Faust private (``tests/unit/streams/test_faust_door.py`` fails when one does).

faust-streaming is pinned exactly in pyproject.toml (and the lock file) because these private parts
are not an API: a release may change them without notice. ``changed()`` lists every one whose source
no longer matches what ``streams/`` was written against; ``tests/unit/streams/test_faust_internals.py``
fails on any, so an upgrade is a conscious change (read the new source, adapt the functions below,
record the new fingerprints with ``python -m streams.faust_internals``).

The privates used, by owner (who uses them through which function):
- ``App._consumer``: ``created_consumer`` (``streams/worker_ops.py``: never create a consumer to read it);
- ``Consumer._drain_messages``: replaced per instance by ``replace_drain`` (``streams/fastpath.py``);
  the replacement's loop reads, through ``DrainInternals``, ``Consumer._stopped``, ``_read_offset``,
  ``_commit_every``, ``_n_acked``, ``_unacked_messages``, ``_add_gap`` and the fetcher's ``_stopped``;
  it fetches with ``Consumer._wait_next_records`` (what ``Consumer.getmany`` awaits; the per-record part
  of ``getmany`` is done per partition: ``_buffered_partitions``, ``_to_message`` for the topics that take
  Faust's path) and acknowledges per partition what ``Consumer.ack`` does per message (``_committed_offset``,
  ``_acked_index``, ``_acked``, ``_n_acked``, ``_waiting_for_ack``, under ``faust.types.tuples.ack_lock``),
  with one ``InFlight`` entry per batch in ``_unacked_messages`` (``Consumer.wait_empty`` reads its
  ``acked``);
- ``Consumer._commit`` (called only by ``Consumer._commit_offsets``): wrapped by ``hook_commit``
  (``streams/changelog.py``: offsets after the changelog rows are delivered);
- ``Consumer._commit_offsets`` (what ``Consumer._commit_tps`` awaits for every commit): wrapped per instance by
  ``commit_only_accepted`` (``streams/fastpath.py``: a commit the broker did not take is not counted as committed
  and is made again at the next round), which restores ``_committed_offset``, ``_acked`` and ``_acked_index``
  (under ``ack_lock``) and reads ``App.rebalancing_count``;
- ``Consumer._read_offset`` / ``_committed_offset``: ``read_offsets`` / ``committed_offsets``
  (``streams/worker_ops.py``);
- rocksdb ``Store._db_for_partition`` / ``_dbs``: ``partition_db`` / ``partition_dbs``
  (``streams/changelog.py`` writes batches through it; ``streams/worker_ops.py`` sizes);
- rocksdb ``Store.rocksdb_options`` (``RocksDBOptions.as_options``, which ``RocksDBOptions.open`` calls for
  every partition database): ``tune_rocksdb_options`` (``streams/tables.py``: the sessions store's filters);
- rocksdb ``Store._visible_keys`` and memory ``Store._key_partition``: ``stored_keys_by_partition``
  (``streams/minute_rates.py`` lists recovered windows);
- ``Collection._maybe_set_key_ttl``, ``_to_key``, ``_partition_timestamp_keys``: ``register_for_expiry``
  and ``WindowTable`` (``streams/minute_rates.py``, ``streams/tables.py``: window expiry);
- the consumer thread's aiokafka consumer (``AIOKafkaConsumerThread._consumer``, made in ``on_start``) and
  its ``Fetcher._fetch_min_bytes`` / ``_fetch_max_wait_ms`` (read by ``Fetcher._get_actions_per_node`` for
  every fetch request): ``set_fetch_wait`` (``streams/agents/sessions.py``); its
  ``Fetcher._proc_fetch_request`` (sends one fetch request and takes its answer; True when it buffered
  records), wrapped per instance by ``hold_idle_fetches`` (``streams/agents/sessions.py``);
- ``ThreadDelegateConsumer._getmany`` (what ``Consumer._wait_next_records`` calls for every fetch, which
  ends in aiokafka's ``Fetcher.fetched_records(partitions)``): wrapped per instance by ``scope_fetches``
  (``streams/fastpath.py``: nothing is taken from aiokafka's buffer while flow is suspended, nor anything
  but changelog records while a rebalance's recovery is not done: ``TableManager.actives_ready``,
  ``changelog_topics``).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import faust
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

VERSION = "0.15.3"

# "module:qualified.name" -> first 16 hex digits of sha256(inspect.getsource(obj))
FINGERPRINTS = {
    "faust.transport.consumer:Consumer.__init__": "302410d59e6972d1",
    "faust.transport.consumer:Consumer._drain_messages": "44a2500309e83c63",
    "faust.transport.consumer:Consumer._add_gap": "4df2573ded7c1c2c",
    "faust.transport.consumer:Consumer.ack": "5fcf41cf45153475",
    "faust.transport.consumer:Consumer._commit_offsets": "1a69799041188441",
    "faust.transport.consumer:ThreadDelegateConsumer._commit": "a20eec84e4b2ed50",
    "faust.app.base:App._new_consumer": "bff6ccd646b71ea9",
    "faust.stores.rocksdb:Store._db_for_partition": "cb7e67d5f9efc4bc",
    "faust.stores.rocksdb:Store._visible_keys": "28b3c24a6884cbcd",
    "faust.stores.rocksdb:Store.__init__": "c7c0fa2989e8ab4a",
    "faust.stores.rocksdb:RocksDBOptions.open": "ff87e92d69e2f487",
    "faust.stores.rocksdb:RocksDBOptions.as_options": "d2a1bea17736d2eb",
    "faust.stores.memory:Store.__init__": "d1705e3cfe39e787",
    "faust.tables.base:Collection._maybe_set_key_ttl": "39b7465fa5803899",
    "faust.tables.base:Collection._to_key": "c90f7153476213b8",
    "faust.tables.base:Collection.__init__": "95568fc09c76d006",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.on_start": "38b4e8bd1e10723a",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer": "c2701bfc3e6f6cad",
    "aiokafka.consumer.fetcher:Fetcher.__init__": "bf21ecb7e0f210b7",
    "aiokafka.consumer.fetcher:Fetcher._get_actions_per_node": "1dab2cf937d165d0",
    # hold_idle_fetches: one fetch request sent and its answer taken (True when records were buffered)
    "aiokafka.consumer.fetcher:Fetcher._proc_fetch_request": "59bf948fff47eed5",
    # scope_fetches: the fetch path from Faust's getmany to aiokafka's buffer, and the flow it checks
    "faust.transport.consumer:Consumer.getmany": "4b168d84882a70d6",
    "faust.transport.consumer:Consumer._wait_next_records": "6218e1969a636b3f",
    "faust.transport.consumer:ThreadDelegateConsumer._getmany": "f9d47aa9010b5ff2",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.getmany": "26fc5fc9f3b667e1",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._fetch_records": "39a2c6c79fc1455a",
    "faust.tables.recovery:Recovery._restart_recovery.fun": "6bd8a8558a2dffe4",
    "aiokafka.consumer.fetcher:Fetcher.fetched_records": "be4348896b9b66af",
    # DrainInternals.fetch / .ack, InFlight: getmany's per-record part done per partition, acks per batch
    "faust.transport.drivers.aiokafka:Consumer._to_message": "7c24f6511b2fcef7",
    "faust.transport.consumer:Consumer.wait_empty": "e4662fe24f094819",
    "faust.transport.consumer:Consumer._clean_unacked_messages": "11be2587e71c9162",
    "faust.transport.consumer:Consumer._new_offset": "1d2c7ea89a7ad4f1",
    "faust.transport.consumer:Consumer.perform_seek": "0e8c130ff4b0afd8",
    # FetchScope's recovery gate: actives_ready cleared at a rebalance's start (in the consumer's thread),
    # set after the resume; the new assignment listed active before the app pauses it; no suspension for
    # an empty assignment
    "faust.tables.manager:TableManager.on_rebalance_start": "5768df0df79ecef9",
    "faust.tables.manager:TableManager.on_actives_ready": "274c07e80913af0c",
    "faust.tables.manager:TableManager.changelog_topics.fget": "e137531cfedde37a",
    "faust.app.base:App.on_rebalance_start": "5c1e23de30674082",
    "faust.app.base:App._on_partitions_revoked": "d5c895bbe57dc73a",
    "faust.tables.recovery:Recovery._resume_streams": "d986a6710c1aca98",
    "faust.transport.drivers.aiokafka:ConsumerRebalanceListener.on_partitions_revoked": "348c3aec879faf80",
    "faust.transport.consumer:Consumer.on_partitions_assigned": "29ce96596f05a18c",
    "faust.transport.consumer:Consumer._set_active_tps": "401f4dc883191950",
    # commit_only_accepted: _commit_tps calls _commit_offsets through the instance, _new_offset takes the run off
    # _acked, _should_commit compares with _committed_offset; a revocation drops every partition's bookkeeping,
    # then waits (wait_empty -> commit) for a commit in flight
    "faust.transport.consumer:Consumer._commit_tps": "a20e230b05ae8b15",
    "faust.transport.consumer:Consumer._should_commit": "5ce941793947ad42",
    "faust.transport.consumer:Consumer.on_partitions_revoked": "d04b7ae72c6fc206",
    "faust.transport.consumer:Consumer.commit": "a354437baaa08bf8",
}


# -- the consumer ----------------------------------------------------------------------------------
def created_consumer(app: Any) -> Any:
    """The app's consumer if one was created, else None (``app.consumer`` would create one)."""
    return app._consumer


def read_offsets(consumer: Any) -> dict[Any, int | None]:
    """A copy of {TP: last offset read}."""
    return dict(consumer._read_offset)


def committed_offsets(consumer: Any) -> dict[Any, int | None]:
    """A copy of {TP: last offset committed}."""
    return dict(consumer._committed_offset)


def replace_drain(consumer: Any, drain: Callable[[Any], Awaitable[None]]) -> None:
    """Make ``drain(fetcher)`` the loop that takes this consumer's fetched messages (Faust's own is
    ``Consumer._drain_messages``); for this instance only."""
    consumer._drain_messages = drain


def hook_commit(consumer: Any, before: Callable[[], Awaitable[None]]) -> bool:
    """Make every offset commit of ``consumer`` await ``before()`` first (an exception there means
    nothing is committed); True if hooked now, False if it already was."""
    if getattr(consumer, "_livemetrics_commit_hooked", False):
        return False
    commit = consumer._commit

    async def _commit(offsets: Any) -> Any:
        await before()
        return await commit(offsets)

    consumer._commit = _commit
    consumer._livemetrics_commit_hooked = True
    return True


def commit_only_accepted(consumer: Any) -> bool:
    """Make ``consumer`` count as committed only the offsets the broker took; True if done now, False if it
    already was.

    Why. Faust's ``_commit_offsets`` records its offsets in ``_committed_offset`` whether ``_commit`` took them or
    not (False: aiokafka's CommitFailedError "already rebalanced", after the changelog hook saw the rows
    delivered), and ``_new_offset`` had already taken them off the partition's acknowledged offsets, so no later
    round commits them again. Then:
    - after a refusal with no rebalance begun yet, the worker believed a partition committed that was not: no more
      messages, and the group's lag there stayed until the next message or a restart; one more message, and its
      commit covered them;
    - a commit in flight when a rebalance begins ends inside the revocation (``Consumer.wait_empty`` waits for it),
      after ``Consumer.on_partitions_revoked`` dropped every partition's bookkeeping (Faust's assignment is eager:
      every partition is revoked): Faust wrote the refused offset back after that, and the next assignment's seek
      (``perform_seek``) replaces it only where the broker has a committed offset. On a partition the group never
      committed, coming back to this worker, it stayed: the records read again from the start were below it, so
      not acknowledged, and nothing was committed for them until a message past it came.
    Now a refused commit puts back what it took: with no rebalance begun, each partition's committed
    offset as it was and its acknowledged offsets from there, so the next round (the commit timer, every
    ``broker_commit_interval``) commits them again, with no new message; with a rebalance under way or begun, the
    refused offsets are dropped again, as the revocation did, and the new assignment starts from the broker's
    (``tests/unit/streams/test_commit_refused.py``, ``tests/integration/test_commit_refused.py``). Nothing
    acknowledged is committed before its time: only offsets handled already, whose changelog rows were delivered,
    go back; at-least-once as before. A commit that raises is left as Faust leaves it (why: in the wrapper)."""
    if getattr(consumer, "_livemetrics_commits_checked", False):
        return False
    commit_offsets = consumer._commit_offsets
    app = consumer.app

    async def _commit_offsets(offsets: Any, start_new_transaction: bool = True) -> bool:
        committed = consumer._committed_offset
        before = {tp: committed.get(tp) for tp in offsets}  # .get: the defaultdict would add the partition
        rebalances = app.rebalancing_count
        # A commit that raises is left as Faust leaves it: the changelog hook raises when rows were not delivered,
        # and the offsets of those events must not be committed by a later round (the worker exits; they are
        # processed again).
        did_commit: bool = await commit_offsets(offsets, start_new_transaction=start_new_transaction)
        if not did_commit:
            # A rebalance under way (the revocation's own commit) or begun meanwhile: its revocation drops the
            # partitions' bookkeeping, and the new assignment seeks to the broker's committed offsets.
            _put_back(consumer, offsets, before, rebalanced=app.rebalancing or app.rebalancing_count != rebalances)
        return did_commit

    consumer._commit_offsets = _commit_offsets
    consumer._livemetrics_commits_checked = True
    return True


def _put_back(consumer: Any, offsets: Any, before: dict[Any, int | None], rebalanced: bool) -> None:
    """Undo what Faust's commit of ``offsets`` (not taken by the broker) did to the bookkeeping of each partition:
    ``before`` is its committed offset when the commit began."""
    committed = consumer._committed_offset
    assigned = set() if rebalanced else consumer.assignment()
    with ack_lock:
        for tp, offset in offsets.items():
            if rebalanced:
                # The revocation dropped this partition's bookkeeping (before or after the commit ended): what Faust
                # wrote back, if anything, goes too; the next assignment reads the broker's committed offset.
                if committed.get(tp) == offset:
                    committed.pop(tp, None)
                continue
            if tp not in assigned:
                continue  # not this worker's now (Faust discarded its commit): its revocation drops the rest
            if committed.get(tp) not in (offset, before[tp]):
                continue  # changed meanwhile by something else (a seek): that stands
            previous = before[tp]
            if previous is None:
                committed.pop(tp, None)
            else:
                committed[tp] = previous
            # ``_new_offset`` took the run up to ``offset`` off the acknowledged ones: back from the committed offset
            # (none: its last one is enough, nothing is below it to join), so the next round's run reaches it again.
            start = offset - 1 if previous is None or previous < 0 else previous
            index = consumer._acked_index[tp]
            back = [o for o in range(start, offset) if o not in index]
            index.update(back)
            consumer._acked[tp].extend(back)


class InFlight:
    """Stands in Faust's set of unacknowledged messages (``Consumer._unacked_messages``, a WeakSet that
    ``Consumer.wait_empty`` waits to see empty before a revocation goes on) for all the records of one
    fetch's batch: one entry a batch instead of one a message. ``wait_empty`` reads ``acked`` (and logs
    ``refcount``) of what it holds, as of a message."""

    __slots__ = ("__weakref__", "acked", "refcount", "size")

    def __init__(self, size: int = 0):
        self.acked, self.refcount, self.size = False, 1, size

    def __repr__(self) -> str:
        return f"<InFlight batch of {self.size} records>"


class DrainInternals:
    """The consumer's private bookkeeping a drain loop reads and writes (``Consumer._drain_messages``,
    ``Consumer.getmany``, ``Consumer.ack``)."""

    def __init__(self, consumer: Any, fetcher: Any = None):
        self.consumer = consumer
        self.consumer_stopping: Callable[[], bool] = consumer._stopped.is_set
        # The fetcher service running the loop (None: a loop that is not run, as in unit tests).
        self.fetcher_stopping: Callable[[], bool] = (fetcher or consumer)._stopped.is_set
        self.read_offset: MutableMapping[Any, int | None] = consumer._read_offset  # TP -> last offset read
        self.unacked: Any = consumer._unacked_messages  # a WeakSet: a revocation waits until it is empty
        self.add_gap: Callable[[Any, int, int], Awaitable[None]] = consumer._add_gap
        self.commit_every: int | None = consumer._commit_every
        # What Faust's ``getmany`` awaits for one fetch: ({TP: [aiokafka ConsumerRecord]} or None, the
        # partitions Faust had active when it asked, None for a client-only app).
        self.next_records: Callable[[float], Awaitable[tuple[Any, Any]]] = consumer._wait_next_records
        self.buffered: Any = consumer._buffered_partitions  # also let through, as Faust's getmany does
        self.to_message: Callable[[Any, Any], Any] = consumer._to_message  # record -> Faust's ConsumerMessage

    def ack(self, tp: Any, offsets: range) -> int:
        """``Consumer.ack`` for the records of ``tp`` at ``offsets`` at once (they were handled): each offset
        not yet acknowledged and not below the committed one is added to ``_acked_index`` / ``_acked``
        and counted in ``_n_acked``, under Faust's ``ack_lock``; a ``wait_empty`` is woken as by an ack.
        Returns how many were new. (Faust's ``_new_offset`` sorts ``_acked`` before it reads it.)"""
        c = self.consumer
        with ack_lock:
            if not c.app.topics.acks_enabled_for(tp.topic):
                return 0
            try:
                committed = c._committed_offset[tp]
                if committed is not None and offsets.start < committed:
                    offsets = range(min(committed, offsets.stop), offsets.stop)
                index = c._acked_index[tp]
                if index.isdisjoint(offsets):
                    fresh: Any = offsets
                else:  # some were acknowledged already (a record read again)
                    fresh = [o for o in offsets if o not in index]
                index.update(fresh)
                c._acked[tp].extend(fresh)
                c._n_acked += len(fresh)
                return len(fresh)
            finally:
                notify(c._waiting_for_ack)

    async def fetch(self, timeout: float) -> tuple[Any, Any, int]:
        """One fetch as Faust's ``Consumer.getmany`` makes it, without its per-record part: ({TP: [records]},
        the partitions Faust had active (None: all), the consumer generation when the fetch returned).
        Empty when the consumer stops, and when flow is suspended: then, as ``getmany`` does, every
        partition is sought back to its committed offset (what was fetched comes again)."""
        c = self.consumer
        records, active = await self.next_records(timeout)
        generation = c.app.consumer_generation_id
        if records is None or c.should_stop:
            return {}, active, generation
        if not c.flow_active:
            try:
                await c.perform_seek()
            except Exception as ex:  # as Faust's getmany: logged, the loop goes on
                c.log.warning(f"exception performing seek when flow not active {ex}")
            return {}, active, generation
        return records, active, generation

    def commit_due(self) -> bool:
        """True (and the count restarted) when ``broker_commit_every`` messages were acked since the last."""
        c = self.consumer
        if self.commit_every is not None and c._n_acked >= self.commit_every:
            c._n_acked = 0
            return True
        return False


def set_fetch_wait(consumer: Any, min_bytes: int, max_wait_ms: int) -> bool:
    """Make ``consumer``'s fetches wait on the broker until ``min_bytes`` are there or ``max_wait_ms``
    passed. Faust builds its aiokafka consumer with aiokafka's ``fetch_min_bytes`` of 1 (and a fixed
    1,500 ms wait), so under a steady trickle every fetch returns with the first new message: ~140
    fetches/s at 5,000 events/s, each a small batch with its own changelog write (docs/architecture.md,
    Broker CPU). False (nothing set) while its aiokafka consumer is not started."""
    inner = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    fetcher = getattr(inner, "_fetcher", None)
    if fetcher is None:
        return False
    fetcher._fetch_min_bytes = min_bytes
    fetcher._fetch_max_wait_ms = max_wait_ms
    return True


def hold_idle_fetches(consumer: Any, min_bytes: int, max_wait_ms: int, idle_wait_ms: int) -> bool:
    """After a fetch of ``consumer`` that brought no records, ask the broker to hold the next one until its
    first byte is there or ``idle_wait_ms`` passed; after one that brought records, ``min_bytes`` or
    ``max_wait_ms`` again (``set_fetch_wait``'s), as long as any broker's last fetch brought records. Under load
    nothing changes; idle, the worker's fetches had come back empty every 20 ms (~45 a second, each one the
    broker parked, timed out and answered: docs/architecture.md, Broker CPU), and a lone event waited out the
    rest of those 20 ms. The values are read by aiokafka when it
    builds the next request, on the consumer's thread, where this runs. True if set now, False if it already
    was or its aiokafka consumer is not started."""
    inner = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    fetcher = getattr(inner, "_fetcher", None)
    if fetcher is None or getattr(fetcher, "_livemetrics_idle_hold", False):
        return False
    send = fetcher._proc_fetch_request
    # Whether each broker's last fetch came back empty. The two values are the fetcher's, shared by its requests
    # to every broker, so the idle hold is taken only when every broker's last fetch was empty: one broker
    # leading only quiet partitions must not turn a busy broker's fetches into one per first byte. (A broker
    # gone from the cluster keeps its last answer here: if that was records, the loaded values stay.)
    empty: dict[Any, bool] = {}

    async def _proc_fetch_request(assignment: Any, node_id: Any, request: Any) -> Any:
        got = await send(assignment, node_id, request)  # True when it buffered records (or an error to raise)
        empty[node_id] = not got
        if all(empty.values()):
            fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = 1, idle_wait_ms
        else:
            fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = min_bytes, max_wait_ms
        return got

    fetcher._proc_fetch_request = _proc_fetch_request
    fetcher._livemetrics_idle_hold = True
    return True


class FetchScope:
    """The partitions one fetch may take records of from aiokafka's buffer: those Faust has active (the
    live set, as Faust passes it), and only while flow is not suspended. Given to aiokafka's
    ``Fetcher.fetched_records(partitions)`` in place of the live set; aiokafka only asks ``tp in``.

    Why. A fetch waits in aiokafka up to its timeout, across a rebalance that begins meanwhile,
    and every record it takes moves aiokafka's position past it. Faust's ``getmany`` then drops what it
    took while flow is suspended, trusting a seek to bring it back. A table recovery seeks its
    changelog partitions once, at its start, and resumes flow a few event-loop turns later: records
    such a fetch took *after* that seek and handed back *before* the resume were dropped for good, so the
    recovery either never saw its last rows (it waited for ever: "No event received for active tp ...
    since recovery start") or restored a table without them; and raw events so taken from a partition
    nothing was committed for never came again either (Faust's seek to the committed offset and its gap
    check both skip such a partition), so later acknowledgements committed past them. The live set is
    also empty while the recovery prepares (every partition paused), and aiokafka reads an empty set as
    "every partition".
    Scoped, a fetch that outlives the flow takes nothing until flow resumes (the recovery's seek is then
    behind it), and an empty set takes nothing (``tests/integration/test_fastpath_rebalance.py``).

    Nor, from a rebalance's start until its recovery is done (the tables' ``actives_ready``: cleared by
    ``App.on_rebalance_start``, which aiokafka's revocation calls in the consumer's thread, the very thread
    that asks ``tp in``; set after the resume), does a fetch take records of any topic but the tables'
    changelogs (what the recovery reads), whatever the flow. Faust suspends flow only for a worker whose
    assignment was not empty when the rebalance began: one with none (a worker that had no partition) kept
    flow running, and its consumer lists the new assignment as active (``Consumer.on_partitions_assigned``)
    before the app pauses it, so a fetch in flight took the new partitions' records and handed them on
    before their tables were recovered (``tests/integration/test_fastpath_rebalance_empty.py``). Records
    not taken stay in aiokafka's buffer (it keeps an assigned partition's records it was not asked for)."""

    __slots__ = ("_changelogs", "_consumer", "_tables", "_tps")

    def __init__(self, consumer: Any, tps: Any):
        self._consumer, self._tps = consumer, tps
        self._tables = consumer.app.tables
        self._changelogs: Any = self._tables.changelog_topics  # a copy (every table exists before the start)

    def __bool__(self) -> bool:
        return True  # aiokafka reads a false ``partitions`` as "every partition"

    def __contains__(self, tp: Any) -> bool:
        return (
            bool(self._consumer.flow_active)
            and tp in self._tps
            and (self._tables.actives_ready or tp.topic in self._changelogs)
        )

    def __iter__(self) -> Iterator[Any]:
        return iter([tp for tp in list(self._tps) if tp in self])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def scope_fetches(consumer: Any) -> bool:
    """Make every fetch of ``consumer`` take records only within a ``FetchScope`` (read there why); True
    if done now, False if it already was."""
    if getattr(consumer, "_livemetrics_fetch_scoped", False):
        return False
    getmany = consumer._getmany

    async def _getmany(active_partitions: Any, timeout: float) -> Any:
        scope = None if active_partitions is None else FetchScope(consumer, active_partitions)
        return await getmany(active_partitions=scope, timeout=timeout)

    consumer._getmany = _getmany
    consumer._livemetrics_fetch_scoped = True
    return True


# -- stores ----------------------------------------------------------------------------------------
def partition_dbs(store: Any) -> dict[int, Any] | None:
    """A RocksDB store's open databases by partition (a copy); None for another store."""
    dbs = getattr(store, "_dbs", None)
    return None if dbs is None else dict(dbs)


def partition_db(store: Any, partition: int) -> Any:
    """The RocksDB database of one partition (opened if it is not yet); None for another store."""
    if not hasattr(store, "_db_for_partition"):
        return None
    return store._db_for_partition(partition)


def tune_rocksdb_options(store: Any, tune: Callable[[Any], None]) -> bool:
    """Make ``tune(options)`` part of the rocksdict ``Options`` each of ``store``'s partition databases is
    opened with (``RocksDBOptions.open`` builds them with ``as_options``; Faust passes only a few settings
    on from a table's ``options``). False for a store that is not RocksDB through rocksdict."""
    opts = getattr(store, "rocksdb_options", None)
    if opts is None or not opts.use_rocksdict:
        return False
    build = opts.as_options

    def as_options() -> Any:
        options = build()
        tune(options)
        return options

    opts.as_options = as_options
    return True


def stored_keys_by_partition(table: Any) -> Iterator[tuple[int, Any]]:
    """(partition, key) of every key in the local store of the partitions this worker holds, keys as
    the table's own (a RocksDB key deserialized from its JSON bytes)."""
    store = table.data
    dbs = partition_dbs(store)
    if dbs is not None:
        for partition, db in dbs.items():
            for raw in store._visible_keys(db):
                yield partition, table._to_key(json.loads(raw))
    else:  # memory store: the partition of every key recovered from the changelog
        yield from ((p, key) for key, p in list(store._key_partition.items()))


# -- window expiry ---------------------------------------------------------------------------------
def registered_for_expiry(table: Any, partition: int, key: Any) -> bool:
    """Whether a window key is on its partition's expiry heap."""
    return key in table._partition_timestamp_keys.get((partition, key[1][1]), ())


def register_for_expiry(table: Any, key: Any, partition: int) -> None:
    """Put a window key on its partition's expiry heap (what Faust does when the key is set)."""
    table._maybe_set_key_ttl(key, partition)


class WindowTable(faust.Table):  # type: ignore[type-arg]
    """Faust's table, with each window registered for expiry once. Faust's ``on_key_set`` pushes the
    window's end onto its partition's expiry heap on *every* write, so a window set again and again (the
    gauges agent sets one each time a report changes its minute) would hold one heap entry per write
    until it expires: over 2 million entries at 600 writes/s."""

    def _maybe_set_key_ttl(self, key: Any, partition: int) -> None:
        if not registered_for_expiry(self, partition, key):
            super()._maybe_set_key_ttl(key, partition)


# -- the pin ---------------------------------------------------------------------------------------
def fingerprint(target: str) -> str:
    """The fingerprint of one ``module:qualified.name`` as installed (``missing`` when it is gone)."""
    module, path = target.split(":")
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return "missing"
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def installed_version() -> str:
    from importlib.metadata import version

    return version("faust-streaming")


def changed() -> list[str]:
    """What no longer matches: the version and every internal whose source differs."""
    out = [] if installed_version() == VERSION else [f"faust-streaming {installed_version()} (pinned {VERSION})"]
    for target, want in FINGERPRINTS.items():
        have = fingerprint(target)
        if have != want:
            out.append(f"{target}: {have} (recorded {want})")
    return out


if __name__ == "__main__":  # prints the fingerprints of what is installed, to record after an upgrade
    for target in FINGERPRINTS:
        print(f'    "{target}": "{fingerprint(target)}",')
