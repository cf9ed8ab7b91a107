"""Session agent: folds raw events and timer ticks into session state, keeps per-(seller, partition)
running sums of the sessions' contributions, reports changed sums to the gauges agent and turns every
failed payment into an alert."""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict

import msgspec

from livemetrics import contract
from streams import state as sm
from streams.alerts import payment_failure_alert
from streams.app import app, settings
from streams.clock import now_ms
from streams.tables import sessions
from streams.topics import live_deltas, payment_alerts, session_input, session_ticks

WINDOWS = sm.Windows(live_ms=settings.live_window_s * 1000, timeout_ms=settings.session_timeout_s * 1000)
TICKS_TOPIC = settings.topic("session-ticks")

_json = msgspec.json.Encoder()
_sums_dec = msgspec.json.Decoder(dict)

# In-memory, rebuilt from the table after every rebalance: when each session next needs a look.
_deadlines: dict[int, list[tuple[int, bytes]]] = {}
_dirty: dict[tuple[str, int], bytes] = {}  # latest sums row per (seller, partition) not yet reported
_alerted: OrderedDict[str, None] = OrderedDict()  # recent alert ids, against re-sends by retrying clients


def _sums_key(seller: str, partition: int) -> bytes:
    return b"\x00sums\x00" + seller.encode() + b"\x00" + str(partition).encode()


def _add_to_sums(seller: str, partition: int, delta: sm.Contribution) -> None:
    key = _sums_key(seller, partition)
    raw = sessions.get(key)
    row = _sums_dec.decode(raw) if raw else {"seq": 0, "v": {}}
    sm.add_into(row["v"], delta)
    # A hybrid logical clock: increases with every update, and jumps to wall time so that a report
    # made after a crash or rebalance orders after anything an earlier owner of the partition sent.
    row["seq"] = max(row["seq"] + 1, time.time_ns())
    data = _json.encode(row)
    sessions[key] = data
    _dirty[(seller, partition)] = data


def _store(key: bytes, st: sm.SessionState, now: int, partition: int) -> None:
    if sm.is_finished(st, now, WINDOWS):
        sessions.pop(key, None)
        return
    sessions[key] = sm.dumps(st)
    due = sm.next_change(st, now, WINDOWS)
    if due is not None:
        heapq.heappush(_deadlines.setdefault(partition, []), (due, key))


def _rebuild(partition: int, now: int) -> None:
    heap: list[tuple[int, bytes]] = []
    for key, raw in sessions.items():
        if raw is None or key.startswith(b"\x00"):
            continue
        st = sm.loads(raw)
        if st.partition == partition:
            heap.append((sm.next_change(st, now, WINDOWS) or now, key))
    heapq.heapify(heap)
    _deadlines[partition] = heap


def on_event(ev: contract.Event, partition: int, now: int) -> dict | None:
    key = ev.session_id.encode()
    raw = sessions.get(key)
    old = sm.loads(raw) if raw else None
    st, delta = sm.apply_event(old, ev, now, WINDOWS, partition)
    if delta:
        _add_to_sums(st.seller, partition, delta)
    _store(key, st, now, partition)
    if ev.type == "payment_failed" and not ev.backfill and ev.event_id not in _alerted:
        _alerted[ev.event_id] = None
        if len(_alerted) > 100_000:
            _alerted.popitem(last=False)
        return payment_failure_alert(ev, old, now)
    return None


def on_tick(partition: int, now: int) -> None:
    if partition not in _deadlines:
        _rebuild(partition, now)
    heap = _deadlines[partition]
    while heap and heap[0][0] <= now:
        _, key = heapq.heappop(heap)
        raw = sessions.get(key)
        if raw is None:
            continue
        st, delta = sm.advance(sm.loads(raw), now, WINDOWS)
        if delta:
            _add_to_sums(st.seller, partition, delta)
        _store(key, st, now, partition)


@app.agent(session_input)
async def track_sessions(stream):
    async for event in stream.events():
        msg = event.message
        now = now_ms()
        if msg.topic == TICKS_TOPIC:
            on_tick(msg.partition, now)
            continue
        try:
            ev = contract.decode(event.value)
        except msgspec.DecodeError:
            app.log.warning("undecodable event at %s[%s]@%s skipped", msg.topic, msg.partition, msg.offset)
            continue
        alert = on_event(ev, msg.partition, now)
        if alert is not None:
            await payment_alerts.send(key=ev.seller_id.encode(), value=_json.encode(alert))


@app.on_partitions_revoked.connect
async def _forget_deadlines(app_, revoked, **kwargs) -> None:
    _deadlines.clear()  # rebuilt lazily from the table for whatever this worker owns next


@app.timer(interval=0.1)
async def report_sums() -> None:
    """Send each changed (seller, partition) sums row to the gauges agent."""
    if not _dirty:
        return
    batch = list(_dirty.items())
    _dirty.clear()
    for (seller, partition), data in batch:
        row = _sums_dec.decode(data)
        body = {"seller": seller, "p": partition, "seq": row["seq"], "v": row["v"]}
        await live_deltas.send(key=seller.encode(), value=_json.encode(body))


@app.timer(interval=settings.tick_interval_s)
async def send_ticks() -> None:
    """One tick per partition: expiry runs inside the stream, in order with that partition's events."""
    body = _json.encode({"at": now_ms()})
    for p in range(settings.partitions):
        await session_ticks.send(value=body, partition=p)
