"""Session agent: folds raw events and timer ticks into session state, keeps per-(seller, partition)
sums rows (the sessions' contributions, per-minute rates and the highest offset counted per topic),
reports changed rows to the gauges agent and turns every failed payment into one alert.

The hot path takes events in batches: each session and each sums row is read and written once per
batch, whatever the number of its events in it (fewer table writes, same result: every update is
idempotent and the rows are written in the same changelog partition as the sessions)."""

from __future__ import annotations

import heapq
import time
import weakref
from collections import OrderedDict, defaultdict

import msgspec
from faust.streams import _current_event

from livemetrics import contract
from streams import rates
from streams import state as sm
from streams.alerts import payment_failure_alert
from streams.app import app, settings
from streams.clock import now_ms
from streams.tables import sessions
from streams.topics import live_deltas, payment_alerts, session_input, session_ticks

WINDOWS = sm.Windows.from_settings(settings)
TICKS_TOPIC = settings.topic("session-ticks")
BATCH = 2000

_json = msgspec.json.Encoder()
_row_dec = msgspec.json.Decoder(dict)

# In-memory, rebuilt from the table after every rebalance: when each session next needs a look.
_deadlines: dict[int, list[tuple[int, bytes]]] = {}
_dirty: dict[tuple[str, int], bytes] = {}  # latest sums row per (seller, partition) not yet reported
_alerted: OrderedDict[str, None] = OrderedDict()  # recent alert ids, against re-sends by retrying clients


def sums_key(seller: str, partition: int) -> bytes:
    return b"\x00sums\x00" + seller.encode() + b"\x00" + str(partition).encode()


class PartitionBatch:
    """The reads and writes of one batch for one partition: each key read and written at most once."""

    def __init__(self, partition: int, now: int):
        self.partition, self.now = partition, now
        self.states: dict[bytes, sm.SessionState | None] = {}
        self.rows: dict[str, dict] = {}
        self.alerts: list[dict] = []

    def state(self, key: bytes) -> sm.SessionState | None:
        if key not in self.states:
            raw = sessions.get(key)
            self.states[key] = sm.loads(raw) if raw else None
        return self.states[key]

    def row(self, seller: str) -> dict:
        row = self.rows.get(seller)
        if row is None:
            raw = sessions.get(sums_key(seller, self.partition))
            row = _row_dec.decode(raw) if raw else {}
            row.setdefault("seq", 0), row.setdefault("v", {}), row.setdefault("hw", {}), row.setdefault("r", {})
            self.rows[seller] = row
        return row

    def event(self, ev: contract.Event, topic: str, offset: int) -> None:
        key = ev.session_id.encode()
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
        if self.partition not in _deadlines:
            _rebuild(self.partition, self.now)
        heap = _deadlines[self.partition]
        while heap and heap[0][0] <= self.now:
            _, key = heapq.heappop(heap)
            old = self.state(key)
            if old is None:
                continue
            st, delta = sm.advance(old, self.now, WINDOWS)
            self.states[key] = st
            if delta:
                sm.add_into(self.row(st.seller)["v"], delta)
        minute = self.now // rates.BUCKET_MS
        if _tick_minute.get(self.partition) != minute:  # a new minute: the rates' hour slides on
            _tick_minute[self.partition] = minute
            for seller in list(_rated.get(self.partition, ())):
                self.row(seller)

    def write(self) -> None:
        """Write every touched session and sums row once (table writes need a current event of this
        partition: the caller sets it)."""
        heap = _deadlines.setdefault(self.partition, [])
        for key, st in self.states.items():
            if st is None:
                continue
            if sm.is_finished(st, self.now, WINDOWS):
                if sessions.get(key) is not None:
                    del sessions[key]
                continue
            sessions[key] = sm.dumps(st)
            due = sm.next_change(st, self.now, WINDOWS)
            if due is not None:
                heapq.heappush(heap, (due, key))
        for seller, row in self.rows.items():
            row["r"] = rates.prune(row["r"], self.now)
            rated = _rated.setdefault(self.partition, set())
            (rated.add if row["r"] else rated.discard)(seller)
            # A hybrid logical clock: increases with every update, and jumps to wall time so that a
            # report made after a crash or rebalance orders after anything an earlier owner sent.
            row["seq"] = max(row["seq"] + 1, time.time_ns())
            data = _json.encode(row)
            sessions[sums_key(seller, self.partition)] = data
            _dirty[(seller, self.partition)] = data


_rated: dict[int, set[str]] = {}  # sellers with rates in the last hour, per partition (rebuilt lazily)
_tick_minute: dict[int, int] = {}


def _rebuild(partition: int, now: int) -> None:
    heap: list[tuple[int, bytes]] = []
    rated: set[str] = set()
    suffix = b"\x00" + str(partition).encode()
    for key, raw in sessions.items():
        if raw is None:
            continue
        if key.startswith(b"\x00sums\x00"):
            if key.endswith(suffix) and _row_dec.decode(raw).get("r"):
                rated.add(key[6:-len(suffix)].decode())
            continue
        st = sm.loads(raw)
        if st.partition == partition:
            heap.append((sm.next_change(st, now, WINDOWS) or now, key))
    heapq.heapify(heap)
    _deadlines[partition] = heap
    _rated[partition] = rated


def process(events) -> list[dict]:
    """Fold a batch of stream events (raw events and ticks, any partitions); return the alerts."""
    now = now_ms()
    by_partition: dict[int, list] = defaultdict(list)
    for event in events:
        by_partition[event.message.partition].append(event)
    alerts: list[dict] = []
    for partition, evs in by_partition.items():
        # Table reads and writes go to the current event's partition (RocksDB store, changelog).
        token = _current_event.set(weakref.ref(evs[-1]))
        try:
            alerts.extend(_process_partition(partition, evs, now))
        finally:
            _current_event.reset(token)
    return alerts


def _process_partition(partition: int, evs: list, now: int) -> list[dict]:
    batch = PartitionBatch(partition, now)
    for event in evs:
        msg = event.message
        if msg.topic == TICKS_TOPIC:
            batch.tick()
            continue
        try:
            ev = contract.decode(event.value)
        except msgspec.DecodeError:
            app.log.warning("undecodable event at %s[%s]@%s skipped", msg.topic, msg.partition, msg.offset)
            continue
        batch.event(ev, msg.topic, msg.offset)
    batch.write()
    return batch.alerts


@app.agent(session_input)
async def track_sessions(stream):
    async for events in stream.take_events(BATCH, within=0.01):
        for alert in process(events):
            await payment_alerts.send(key=alert["seller_id"].encode(), value=_json.encode(alert))


@app.on_partitions_revoked.connect
async def _forget_deadlines(app_, revoked, **kwargs) -> None:
    _deadlines.clear()  # rebuilt lazily from the table for whatever this worker owns next
    _rated.clear()


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
