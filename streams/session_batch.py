"""One batch of raw events and ticks folded into the sessions table: each session and each
(seller, partition) sums row is read and written once per batch, whatever the number of its events
in it (fewer table writes, same result: every update is idempotent and the rows are written in the
same changelog partition as the sessions).

A sums row is ``{"seq", "v": gauges, "r": per-minute rates, "hw": highest offset counted per source
topic}``: rates and alerts are guarded by the offset mark, which lands in the same row write. Its
gauges ``v`` are capped per seller (``streams/caps.py``) from the uncapped sums kept in memory
(``session_memory.uncapped``), so no row grows with the number of distinct values a storefront invents.

Each (seller, partition) holds at most ``SESSIONS_CAP`` sessions (``streams/caps.py::HeldSessions``): a
new session of a seller at it is not kept, and its sums row says ``capped:sessions`` (docs/live-semantics.md,
"Live sessions per seller")."""

from __future__ import annotations

import time
from collections import defaultdict

import msgspec
from prometheus_client import Counter

from livemetrics import contract
from livemetrics.snapshot import CAPPED_SESSIONS
from streams import produce_guard, rates
from streams import session_memory as memory
from streams import state as sm
from streams.alerts import payment_failure_alert
from streams.app import app, settings
from streams.caps import LIVE_PREFIXES, TOTAL, Caps, HeldSessions, OncePer, apply_held, cap_gauges
from streams.caps import sessions_per_partition as _share
from streams.clock import now_ms
from streams.deadlines import Deadlines
from streams.lax_event import decode
from streams.state_cache import MISSING
from streams.table_keys import session_key, sums_key
from streams.tables import sessions, sessions_changelog
from streams.worker_metrics import FOLDED

WINDOWS = sm.Windows.from_settings(settings)
CAPS = Caps.from_settings(settings)
# Live sessions each (seller, partition) holds (``streams/caps.py::HeldSessions``; docs/live-semantics.md).
SESSIONS_CAP = _share(settings.live_sessions_per_seller_max, settings.partitions)
# Every seller's together, shared fairly (``HeldSessions.refusal``): a set of browser keys grew it without bound.
SESSIONS_TOTAL_CAP = _share(settings.live_sessions_max, settings.partitions)
_refusal_logged = OncePer(60.0, time.monotonic)  # a log line per seller per minute at most
# No seller label (as for the other worker counters: a public key could invent sellers' worth of series);
# the log line names the seller.
SESSIONS_REFUSED = Counter(
    "livemetrics_live_sessions_refused_total",
    "Events of new sessions not kept in live state because their seller was at its live sessions cap on the "
    "partition (live_sessions_per_seller_max; a refused session's next event is judged, and counted, again; "
    "an event read again after a restart or rebalance is not counted twice)",
)
SESSIONS_TOTAL_REFUSED = Counter(
    "livemetrics_live_sessions_total_refused_total",
    "Events of new sessions not kept in live state because the partition held its share of live_sessions_max "
    "(every seller's sessions) and their seller held its fair share of it or more (streams/caps.py)",
)
MAX_KEY_BYTES = 2048  # a session key: seller id and session id (<= 64 characters), UTF-8
TICKS_TOPIC = settings.topic("session-ticks")
memory.state_cache.capacity = settings.session_cache_entries

_json = msgspec.json.Encoder()
_row_dec = msgspec.json.Decoder(dict)


class PartitionBatch:
    """The reads and writes of one batch for one partition: each key read and written at most once."""

    def __init__(self, partition: int, now: int):
        self.partition, self.now = partition, now
        self.generation = memory.generation  # written only under the same assignment (``write``)
        self.states: dict[bytes, sm.SessionState | None] = {}
        self.stored: set[bytes] = set()  # session keys that exist in the store
        self.rows: dict[str, dict] = {}
        self.alerts: list[dict] = []
        self.get = sessions_changelog.getter(partition)  # one RocksDB get per key (no contains + get)
        self.cache = memory.state_cache  # this assignment's (a revocation replaces it)
        if partition not in memory.deadlines:
            memory.rebuild(sessions.items(), now, WINDOWS)
            memory.deadlines.setdefault(partition, Deadlines())
        self.sums = memory.uncapped.setdefault(partition, {})  # uncapped gauges per seller (after a rebuild)
        self.held = HeldSessions(memory.held.setdefault(partition, {}), SESSIONS_CAP, SESSIONS_TOTAL_CAP)
        self.alive: dict[bytes, bool] = {}  # whether each session changed in this batch is held now
        recounted = memory.resync.pop(partition, None)
        if recounted is not None:  # every row is written again (below, capped from ``self.sums``)
            for seller, v in recounted.items():
                if self.row(seller)["v"] != self.gauges(seller, cap_gauges(v, CAPS)):
                    app.log.warning("sums row %s/%s repaired from its sessions", seller, partition)

    def state(self, key: bytes) -> sm.SessionState | None:
        st = self.states.get(key, MISSING)  # not a KeyError: most keys are not yet read in the batch
        if st is not MISSING:
            return st  # type: ignore[return-value]
        raw = self.cache.get(key)
        if raw is MISSING:
            raw = self.get(key)
            self.cache.put(key, raw or None)
        if raw:
            self.stored.add(key)
            st = self.states[key] = sm.loads(raw)  # type: ignore[arg-type]
        else:
            st = self.states[key] = None
        return st  # type: ignore[return-value]

    def row(self, seller: str) -> dict:
        row = self.rows.get(seller)
        if row is None:
            raw = self.get(sums_key(seller, self.partition))
            row = _row_dec.decode(raw) if raw else {}
            row.setdefault("seq", 0), row.setdefault("v", {}), row.setdefault("hw", {}), row.setdefault("r", {})
            self.rows[seller] = row
        return row

    def full(self, seller: str) -> dict[str, int]:
        """The seller's uncapped gauges on this partition (its row is written)."""
        v = self.sums.get(seller)
        if v is None:
            v = self.sums[seller] = {}
        return v

    def gauges(self, seller: str, capped: dict[str, int]) -> dict[str, int]:
        """A sums row's gauges: ``capped`` (``cap_gauges`` of the uncapped sums), flagged while the
        (seller, partition) is at its live sessions cap."""
        return {**capped, CAPPED_SESSIONS: 1} if self.held.at_cap(seller) else capped

    def is_held(self, key: bytes) -> bool:
        """Whether the table holds the session (as it will once this batch is written)."""
        alive = self.alive.get(key)
        return key in self.stored if alive is None else alive

    def track(self, key: bytes, st: sm.SessionState) -> None:
        """``st`` is the session's state now (written with the batch): count it held or not."""
        alive = bool(st.emitted) or sm.next_change(st, self.now, WINDOWS) is not None  # kept by ``write``
        self.held.change(st.seller, self.is_held(key), alive)
        self.alive[key] = alive

    def event(self, ev: contract.Event, topic: str, offset: int) -> None:
        # ``state``, ``row`` and ``is_held`` with their usual case inline: this runs for every event.
        seller = ev.seller_id
        key = session_key(seller, ev.session_id)
        got = self.states.get(key, MISSING)
        old: sm.SessionState | None = self.state(key) if got is MISSING else got  # type: ignore[assignment]
        row = self.rows.get(seller)
        if row is None:
            row = self.row(seller)
        hw = row["hw"]
        replay = offset <= hw.get(topic, -1)  # already counted before a crash or rebalance
        now = self.now
        st, delta = sm.apply_event(old, ev, now, WINDOWS, self.partition)
        alive = bool(st.emitted) or sm.next_change(st, now, WINDOWS) is not None  # kept by ``write``
        was = self.alive.get(key)
        if was is None:
            was = key in self.stored
        if self.held.admit(seller, was, alive):
            self.alive[key] = alive
            self.states[key] = st
            if delta:
                sm.add_into(self.full(seller), delta)
        else:
            # A new session of a seller at its cap on this partition: not kept, not counted live. Its
            # event still counts in the rates (as a bot's would not) and goes to history; its next event
            # is judged again.
            self.refused(ev, replay)
        if not replay:
            hw[topic] = offset
            if not st.bot:
                rates.count(row["r"], ev, now, CAPS.payment_method)
        if (
            ev.type == "payment_failed"
            and not ev.backfill
            and not replay
            and (old is None or ev.event_id not in old.failures)
            and memory.first_alert(ev.seller_id, ev.event_id)
        ):
            self.alerts.append(payment_failure_alert(ev, old, self.now))

    def refused(self, ev: contract.Event, replay: bool) -> None:
        if self.held.refusal(ev.seller_id) == TOTAL:
            if not replay:
                SESSIONS_TOTAL_REFUSED.inc()
            if _refusal_logged.due(ev.seller_id):
                app.log.warning(
                    "partition %s holds %d live sessions of every seller (its share of live_sessions_max=%d: %d) "
                    "and seller %r holds %d, its fair share or more: its new sessions there are not counted live "
                    "(its snapshot says sessions_capped; history keeps every event). At most one line per seller "
                    "per minute.",
                    self.partition,
                    self.held.total,
                    settings.live_sessions_max,
                    SESSIONS_TOTAL_CAP,
                    ev.seller_id,
                    self.held.held(ev.seller_id),
                )
            return
        if not replay:  # refused and counted before the crash or rebalance that reads it again
            SESSIONS_REFUSED.inc()
        if _refusal_logged.due(ev.seller_id):
            app.log.warning(
                "seller %r is at its live sessions cap on partition %s (%d of live_sessions_per_seller_max=%d "
                "split over the partitions): its new sessions there are not counted live (its snapshot says "
                "sessions_capped; history keeps every event). At most one line per seller per minute.",
                ev.seller_id,
                self.partition,
                SESSIONS_CAP,
                settings.live_sessions_per_seller_max,
            )

    def tick(self) -> None:
        deadlines = memory.deadlines[self.partition]
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
                self.track(key, st)
                if delta:
                    self.row(st.seller)
                    sm.add_into(self.full(st.seller), delta)
            else:
                # A stale deadline (the session was written again since): nothing to write, only its
                # next look (the newer deadline may have been this one).
                self.states.pop(key, None)
                due = sm.next_change(st, self.now, WINDOWS)
                if due is not None:
                    deadlines.push(due, key)
        minute = self.now // rates.BUCKET_MS
        if memory.tick_minute.get(self.partition) != minute:  # a new minute: the rates' hour slides on
            memory.tick_minute[self.partition] = minute
            for seller in list(memory.rated.get(self.partition, ())):
                self.row(seller)

    def write(self) -> None:
        """Write every touched session, then every touched sums row, once: into the local store in one
        write batch and, in this order, to the partition's changelog. Refused (``StaleBatch``, nothing
        written) after a revocation since the fold: the partition may have another owner now, and its
        memory here is gone (the next batch rebuilds it from the store)."""
        memory.check_generation(self.generation)
        deadlines = memory.deadlines.setdefault(self.partition, Deadlines())
        now, dumps, next_change = self.now, sm.dumps, sm.next_change
        out: list[tuple[bytes, bytes | None]] = []
        # Bounded by construction (the caps, MAX_TRAIL, MAX_FAILURES, the contract's sizes); checked all the
        # same, as librdkafka refuses a message over the limit by raising out of the worker's batch.
        limit = produce_guard.limit
        big, oversize = limit - produce_guard.RECORD_OVERHEAD - MAX_KEY_BYTES, False
        written: list[tuple[bytes, bytes | None]] = []  # the cache's entries once stored
        dues: list[tuple[int, bytes]] = []
        stored = self.stored
        for key, st in self.states.items():
            if st is None:
                continue
            due = next_change(st, now, WINDOWS)
            if due is None and not st.emitted:  # finished: contributes nothing now and never will
                if key in stored:
                    out.append((key, None))
                written.append((key, None))
                continue
            data = dumps(st)
            written.append((key, data))
            out.append((key, data))
            if len(data) > big:
                oversize = True
            if due is not None:
                dues.append((due, key))
        deadlines.push_all(dues)
        held = self.held
        for seller in list(held.delta):  # a seller's row says when it reaches or leaves its cap
            if (held.base.get(seller, 0) >= held.cap) != held.at_cap(seller):
                self.row(seller)
        rated = memory.rated.setdefault(self.partition, set())
        for seller, row in self.rows.items():
            row["r"] = rates.prune(row["r"], self.now)
            old, row["v"] = row["v"], self.gauges(seller, cap_gauges(self.full(seller), CAPS))
            for dim in LIVE_PREFIXES:
                more = row["v"].get(f"folded:{dim}", 0) - old.get(f"folded:{dim}", 0)
                if more > 0:
                    FOLDED.labels(dim).inc(more)
            (rated.add if row["r"] else rated.discard)(seller)
            # A hybrid logical clock: increases with every update, and jumps to wall time so that a
            # report made after a crash or rebalance orders after anything an earlier owner sent.
            row["seq"] = max(row["seq"] + 1, time.time_ns())
            data = _json.encode(row)
            oversize = oversize or len(data) > big
            out.append((sums_key(seller, self.partition), data))
            memory.unreported_rows.mark(seller, self.partition, data)
        if oversize:
            fitting = [(k, v) for k, v in out if v is None or produce_guard.fits(limit, k, v, "changelog row")]
            kept = {k for k, _ in fitting}
            refused = {k for k, v in out if v is not None and k not in kept}
            written = [(k, st) for k, st in written if k not in refused]  # not stored: the store's stays
            out = fitting
        try:
            sessions_changelog.write(self.partition, out)
        except BaseException:
            self.cache.drop()  # the store may hold part of the batch
            raise
        self.cache.put_all(written)
        change, states = HeldSessions({}, 0), self.states
        for key, cached in written:
            now_held = cached is not None
            if (key in stored) != now_held:  # a session stored first, or deleted
                change.change(states[key].seller, not now_held, now_held)  # type: ignore[union-attr]
        apply_held(held.base, change.delta)  # what the table holds now (rows refused as oversize are not)


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
                ev = decode(msg.value)  # no constraint checked again: the gateway did (streams/lax_event.py)
            except msgspec.DecodeError:
                app.log.warning("undecodable event at %s[%s]@%s skipped", msg.topic, msg.partition, msg.offset)
                continue
            batch.event(ev, msg.topic, msg.offset)
        out.append(batch)
    return out


def write(batches: list[PartitionBatch]) -> None:
    for batch in batches:
        batch.write()
