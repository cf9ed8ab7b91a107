"""Session agent: folds raw events and timer ticks into session state, keeps per-(seller, partition)
sums rows (the sessions' contributions, per-minute rates and the highest offset counted per topic),
reports changed rows to the gauges agent and turns every failed payment into one alert.

The hot path takes events in batches: each session and each sums row is read and written once per
batch, whatever the number of its events in it (fewer table writes, same result: every update is
idempotent and the rows are written in the same changelog partition as the sessions).

Crash safety. A SIGKILL can leave any prefix of a batch's changelog writes behind, so:
- alerts are delivered (acknowledged by Kafka) *before* the session that remembers the failure is
  written: a crash in between re-sends the alert on replay (same ``alert_id``), it never loses it;
- sessions are written before their sums rows; the rows' offset marks (rates, alerts) only land with
  the row, so a replay counts again exactly what was lost;
- after every assignment the gauges in each sums row are recomputed from the sessions' recorded
  contributions (``emitted``) and re-reported, so a row that missed its sessions' deltas is repaired and
  a report lost with a killed worker is sent again.

Table writes bypass Faust's per-message producer path (``streams/changelog.py``): a batch's rows for
one partition go into the local store in one RocksDB write batch and, in the same order (sessions,
then sums rows), to the table's changelog partition through a confluent-kafka producer; offsets are
committed only once those rows are acknowledged."""

from __future__ import annotations

import asyncio
import gc
import heapq
import time
from collections import OrderedDict, defaultdict

import msgspec

from livemetrics import contract
from streams import rates
from streams import state as sm
from streams.alerts import payment_failure_alert
from streams.app import app, settings
from streams import fastpath
from streams.changelog import DirectChangelog
from streams.clock import now_ms
from streams.tables import sessions
from streams.topics import live_deltas, payment_alerts, session_input, session_ticks

WINDOWS = sm.Windows.from_settings(settings)
TICKS_TOPIC = settings.topic("session-ticks")
BATCH = 10_000
SUMS = b"\x00sums\x00"

_json = msgspec.json.Encoder()
_row_dec = msgspec.json.Decoder(dict)



class Deadlines:
    """When each session next needs a look: keys in buckets of ``BUCKET_MS`` (rounded up, so a key is
    never looked at before its time), a heap of bucket starts. A key may be in several buckets (each
    write adds one; a stale one finds nothing due and costs one read)."""

    BUCKET_MS = 100

    __slots__ = ("buckets", "heap")

    def __init__(self) -> None:
        self.buckets: dict[int, list[bytes]] = {}
        self.heap: list[int] = []

    def push(self, due_ms: int, key: bytes) -> None:
        b = -(-due_ms // self.BUCKET_MS)
        keys = self.buckets.get(b)
        if keys is None:
            keys = self.buckets[b] = []
            heapq.heappush(self.heap, b)
        keys.append(key)

    def pop_due(self, now_ms: int) -> list[bytes]:
        out: list[bytes] = []
        heap, limit = self.heap, now_ms // self.BUCKET_MS
        while heap and heap[0] <= limit:
            out.extend(self.buckets.pop(heapq.heappop(heap)))
        return out

    def __len__(self) -> int:
        return sum(len(v) for v in self.buckets.values())


# Sessions table rows, written past Faust's producer (see streams/changelog.py).
changelog = DirectChangelog(sessions, settings)

# In-memory, rebuilt from the table after every rebalance: when each session next needs a look.
_deadlines: dict[int, Deadlines] = {}
_rated: dict[int, set[str]] = {}  # sellers with rates in the last hour, per partition
_resync: dict[int, dict[str, dict[str, int]]] = {}  # per partition, gauges recounted from the sessions
_tick_minute: dict[int, int] = {}
_dirty: dict[tuple[str, int], bytes] = {}  # latest sums row per (seller, partition) not yet reported
_alerted: OrderedDict[str, None] = OrderedDict()  # recent alert ids, against re-sends by retrying clients


def sums_key(seller: str, partition: int) -> bytes:
    return SUMS + seller.encode() + b"\x00" + str(partition).encode()


def session_key(seller: str, session_id: str) -> bytes:
    # Session ids are made by each seller's tracker: two sellers may pick the same one.
    return seller.encode() + b"\x00" + session_id.encode()


class PartitionBatch:
    """The reads and writes of one batch for one partition: each key read and written at most once."""

    def __init__(self, partition: int, now: int):
        self.partition, self.now = partition, now
        self.states: dict[bytes, sm.SessionState | None] = {}
        self.stored: set[bytes] = set()  # session keys that exist in the store
        self.rows: dict[str, dict] = {}
        self.alerts: list[dict] = []
        self.get = changelog.getter(partition)  # one RocksDB get per key (no contains + get)
        if partition not in _deadlines:
            _rebuild(now)
            _deadlines.setdefault(partition, Deadlines())
        recounted = _resync.pop(partition, None)
        if recounted is not None:
            for seller, v in recounted.items():
                row = self.row(seller)
                if row["v"] != v:
                    app.log.warning("sums row %s/%s repaired from its sessions", seller, partition)
                    row["v"] = v

    def state(self, key: bytes) -> sm.SessionState | None:
        try:
            return self.states[key]
        except KeyError:
            raw = self.get(key)
            if raw:
                self.stored.add(key)
                st = self.states[key] = sm.loads(raw)
            else:
                st = self.states[key] = None
            return st

    def row(self, seller: str) -> dict:
        row = self.rows.get(seller)
        if row is None:
            raw = self.get(sums_key(seller, self.partition))
            row = _row_dec.decode(raw) if raw else {}
            row.setdefault("seq", 0), row.setdefault("v", {}), row.setdefault("hw", {}), row.setdefault("r", {})
            self.rows[seller] = row
        return row

    def event(self, ev: contract.Event, topic: str, offset: int) -> None:
        key = session_key(ev.seller_id, ev.session_id)
        old = self.state(key)
        row = self.row(ev.seller_id)
        replay = offset <= row["hw"].get(topic, -1)  # already counted before a crash or rebalance
        st, delta = sm.apply_event(old, ev, self.now, WINDOWS, self.partition)
        self.states[key] = st
        if delta:
            sm.add_into(row["v"], delta)
        if not replay:
            row["hw"][topic] = offset
            if not st.bot:
                rates.count(row["r"], ev, self.now)
        if (ev.type == "payment_failed" and not ev.backfill and not replay and ev.event_id not in _alerted
                and (old is None or ev.event_id not in old.failures)):
            _alerted[ev.event_id] = None
            if len(_alerted) > 100_000:
                _alerted.popitem(last=False)
            self.alerts.append(payment_failure_alert(ev, old, self.now))

    def tick(self) -> None:
        deadlines = _deadlines[self.partition]
        looked: set[bytes] = set()
        for key in deadlines.pop_due(self.now):
            if key in looked:
                continue
            looked.add(key)
            pending = key in self.states  # touched in this batch: written (and its deadline pushed) anyway
            old = self.state(key)
            if old is None:
                continue
            st, delta = sm.advance(old, self.now, WINDOWS)
            if delta or pending or sm.is_finished(st, self.now, WINDOWS):
                self.states[key] = st
                if delta:
                    sm.add_into(self.row(st.seller)["v"], delta)
            else:
                # A stale deadline (the session was written again since): nothing to write, only its
                # next look (the newer deadline may have been this one).
                self.states.pop(key, None)
                due = sm.next_change(st, self.now, WINDOWS)
                if due is not None:
                    deadlines.push(due, key)
        minute = self.now // rates.BUCKET_MS
        if _tick_minute.get(self.partition) != minute:  # a new minute: the rates' hour slides on
            _tick_minute[self.partition] = minute
            for seller in list(_rated.get(self.partition, ())):
                self.row(seller)

    def write(self) -> None:
        """Write every touched session, then every touched sums row, once: into the local store in one
        write batch and, in this order, to the partition's changelog."""
        deadlines = _deadlines.setdefault(self.partition, Deadlines())
        now, out, dumps, next_change = self.now, [], sm.dumps, sm.next_change
        for key, st in self.states.items():
            if st is None:
                continue
            due = next_change(st, now, WINDOWS)
            if due is None and not st.emitted:  # finished: contributes nothing now and never will
                if key in self.stored:
                    out.append((key, None))
                continue
            out.append((key, dumps(st)))
            if due is not None:
                deadlines.push(due, key)
        rated = _rated.setdefault(self.partition, set())
        for seller, row in self.rows.items():
            row["r"] = rates.prune(row["r"], self.now)
            (rated.add if row["r"] else rated.discard)(seller)
            # A hybrid logical clock: increases with every update, and jumps to wall time so that a
            # report made after a crash or rebalance orders after anything an earlier owner sent.
            row["seq"] = max(row["seq"] + 1, time.time_ns())
            data = _json.encode(row)
            out.append((sums_key(seller, self.partition), data))
            _dirty[(seller, self.partition)] = data
        changelog.write(self.partition, out)


def _rebuild(now: int) -> None:
    """One pass over the table (after a rebalance): every partition's deadlines, its sellers with rates,
    and each (seller, partition)'s gauges recounted from its sessions' recorded contributions."""
    heaps: dict[int, Deadlines] = defaultdict(Deadlines)
    rated: dict[int, set[str]] = defaultdict(set)
    recount: dict[int, dict[str, dict[str, int]]] = defaultdict(dict)
    for key, raw in sessions.items():
        if raw is None:
            continue
        if key.startswith(SUMS):
            seller, _, p = key[len(SUMS):].rpartition(b"\x00")
            part, name = int(p), seller.decode()
            recount[part].setdefault(name, {})
            if _row_dec.decode(raw).get("r"):
                rated[part].add(name)
            continue
        st = sm.loads(raw)
        if st.emitted:
            sm.add_into(recount[st.partition].setdefault(st.seller, {}), st.emitted)
        heaps[st.partition].push(sm.next_change(st, now, WINDOWS) or now, key)
    for part in set(heaps) | set(recount):
        _deadlines[part] = heaps[part]
        _rated[part] = rated[part]
        _resync[part] = recount[part]


def fold(messages) -> list[PartitionBatch]:
    """Fold a batch of Kafka messages (raw events and ticks, any partitions); nothing is written yet."""
    now = now_ms()
    by_partition: dict[int, list] = defaultdict(list)
    for msg in messages:
        by_partition[msg.partition].append(msg)
    out = []
    for partition, msgs in by_partition.items():
        batch = PartitionBatch(partition, now)
        for msg in msgs:
            if msg.topic == TICKS_TOPIC:
                batch.tick()
                continue
            try:
                ev = contract.decode(msg.value)
            except msgspec.DecodeError:
                app.log.warning("undecodable event at %s[%s]@%s skipped", msg.topic, msg.partition, msg.offset)
                continue
            batch.event(ev, msg.topic, msg.offset)
        out.append(batch)
    return out


def write(batches: list[PartitionBatch]) -> None:
    for batch in batches:
        batch.write()


async def handle(messages) -> None:
    """One batch of raw-event and tick messages: fold, deliver its alerts, then write its rows."""
    batches = fold(messages)
    alerts = [a for b in batches for a in b.alerts]
    if alerts:
        sent = [await payment_alerts.send(key=a["seller_id"].encode(), value=_json.encode(a)) for a in alerts]
        await asyncio.gather(*sent)  # acknowledged before the sessions that remember them are written
    write(batches)


@app.agent(session_input)
async def track_sessions(stream):
    # Offsets are committed only once the changelog rows of the events they cover are acknowledged.
    changelog.install_commit_hook(app)
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
    # Rebuilt from the table for whatever this worker owns next (the store may still hold keys of
    # partitions that moved away: they are never read for a partition this worker does not own).
    # Rows already produced go out before the partition is handed over (none may land after the next
    # owner's).
    await changelog.flush(timeout=settings.delivery_timeout_ms / 1000)
    _deadlines.clear()
    _rated.clear()
    _resync.clear()


@app.timer(interval=0.1)
async def report_sums() -> None:
    """Send each changed (seller, partition) sums row to the gauges agent."""
    if not _dirty:
        return
    batch = list(_dirty.items())
    _dirty.clear()
    for (seller, partition), data in batch:
        row = _row_dec.decode(data)
        body = {"seller": seller, "p": partition, "seq": row["seq"], "v": row["v"], "r": row["r"]}
        await live_deltas.send(key=seller.encode(), value=_json.encode(body))


@app.timer(interval=settings.tick_interval_s)
async def send_ticks() -> None:
    """One tick per partition: expiry runs inside the stream, in order with that partition's events."""
    body = _json.encode({"at": now_ms()})
    for p in range(settings.partitions):
        await session_ticks.send(value=body, partition=p)
