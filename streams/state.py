"""The session state machine (docs/live-semantics.md) as pure functions, tested without Kafka.

A session's *contribution* is what it adds to its seller's gauges at an instant: one location while it
is live, active while it is within the session timeout, purchased / failures / abandonment while they
are within the last 30 minutes. ``apply_event`` and ``advance`` return the new state and the delta
between what the session contributed before and what it contributes now, so a seller's gauges are
always exactly the sum of its sessions' contributions: the same number a recount from raw events gives.

Every update is idempotent: the latest event (by received_at, then ts, then seq, then event_id: see
``_order``) decides the location, times only move forward, failures are keyed by event_id. A redelivered
event changes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from livemetrics.contract import Event, location_of

LIVE_LOCATIONS_EXCLUDED = frozenset({"purchased"})
ABANDON_STEPS = ("checkout", "payment")
MAX_TRAIL = 20
# A session counts at most this many failed payments in the recent window: its latest ones by
# (received_at, event_id). The failures older than the kept ones expire first, so the count is exactly
# min(MAX_FAILURES, failures in the window), and a session's row stays far under the broker's message
# limit (each kept failure is ~50 bytes; see docs/live-semantics.md "Bounded state").
MAX_FAILURES = 1000


class Windows(msgspec.Struct, frozen=True):
    live_ms: int = 300_000  # "on a location now"
    timeout_ms: int = 1_800_000  # active sessions; a session ends after this long without events
    recent_ms: int = 1_800_000  # purchased_30m, payment_failures_30m, abandoned_30m

    @classmethod
    def from_settings(cls, s: Any) -> Windows:
        return cls(
            live_ms=s.live_window_s * 1000, timeout_ms=s.session_timeout_s * 1000, recent_ms=s.recent_window_s * 1000
        )


# A visit: (first_seen, last_seen, loc_at, loc_eid, loc), all received_at times in epoch ms.
Visit = tuple[int, int, int, str, str | None]


class SessionState(msgspec.Struct, array_like=True, omit_defaults=True):
    seller: str
    partition: int = -1
    loc: str | None = None
    loc_at: int = 0
    loc_eid: str = ""
    last_seen: int = 0
    bot: bool = False
    purchased_at: int = 0
    failures: dict[str, int] = {}
    checkout_at: int = 0
    checkout: dict[str, Any] | None = None  # items / total / currency of the latest checkout, for alerts
    trail: list[tuple[str, int, str]] = []  # (event_id, received_at, location) of recent page events
    pages_seen: int = 0
    emitted: dict[str, int] = {}  # what this session currently adds to its seller's gauges
    first_seen: int = 0  # of the current visit
    # Earlier visits of this session id, (first, last, loc_at, loc_eid, loc), kept while they can still
    # count as an abandonment. A session that comes back after the timeout is a new visit; one that
    # ended in checkout or payment stays an abandonment there.
    ended: list[Visit] = []


Contribution = dict[str, int]


def contribution(st: SessionState, now: int, w: Windows) -> Contribution:
    """What the session adds to its seller's gauges at ``now`` (epoch ms)."""
    if st.bot or st.last_seen == 0:
        return {}
    out: Contribution = {}
    idle = now - st.last_seen
    loc = st.loc or "other"
    if idle < w.live_ms and loc not in LIVE_LOCATIONS_EXCLUDED:
        out[f"live:{loc}"] = 1
    if idle < w.timeout_ms:
        out["active"] = 1
    elif loc in ABANDON_STEPS and idle < w.timeout_ms + w.recent_ms:
        out[f"abandoned:{loc}"] = 1
    for _, last, _, _, step in st.ended:
        if step in ABANDON_STEPS and 0 <= now - (last + w.timeout_ms) < w.recent_ms:
            out[f"abandoned:{step}"] = out.get(f"abandoned:{step}", 0) + 1
    if st.purchased_at and now - st.purchased_at < w.recent_ms:
        out["purchased"] = 1
    if st.failures:
        failures = sum(1 for t in st.failures.values() if now - t < w.recent_ms)
        if failures:
            out["failures"] = failures
    return out


def next_change(st: SessionState, now: int, w: Windows) -> int | None:
    """The earliest instant after ``now`` at which the contribution can change without an event."""
    if st.last_seen == 0:
        return None
    if st.bot:  # remembered (never counted) until a recount would forget the session too
        end = st.last_seen + w.timeout_ms + w.recent_ms
        return end if end > now else None
    last = st.last_seen
    if not (st.purchased_at or st.failures or st.ended):  # most sessions: the three points of the last event
        live, gone, end = last + w.live_ms, last + w.timeout_ms, last + w.timeout_ms + w.recent_ms
        soonest = live if live > now else None
        if gone > now and (soonest is None or gone < soonest):
            soonest = gone
        if end > now and (soonest is None or end < soonest):
            soonest = end
        return soonest
    points = [last + w.live_ms, last + w.timeout_ms, last + w.timeout_ms + w.recent_ms]
    if st.purchased_at:
        points.append(st.purchased_at + w.recent_ms)
    if st.failures:
        points.extend(t + w.recent_ms for t in st.failures.values())
    if st.ended:
        for _, ended_last, _, _, _ in st.ended:
            points.extend((ended_last + w.timeout_ms, ended_last + w.timeout_ms + w.recent_ms))
    later = [p for p in points if p > now]
    return min(later) if later else None


def is_finished(st: SessionState, now: int, w: Windows) -> bool:
    """True when the session contributes nothing now and never will again: its state can go."""
    return not st.emitted and next_change(st, now, w) is None


def diff(old: Contribution, new: Contribution) -> Contribution:
    if old == new:  # most events leave the contribution as it was
        return {}
    delta: Contribution = {}
    get = new.get
    for k, v in old.items():
        n = get(k, 0)
        if n != v:
            delta[k] = n - v
    for k, v in new.items():
        if k not in old:
            delta[k] = v
    return delta


def _settle(st: SessionState, now: int, w: Windows) -> tuple[SessionState, Contribution]:
    new = contribution(st, now, w)
    delta = diff(st.emitted, new)
    st.emitted = new
    # Failures older than the 30-minute window never count again: forget them.
    if st.failures:
        st.failures = {k: t for k, t in st.failures.items() if now - t < w.recent_ms}
    if st.ended:
        st.ended = [e for e in st.ended if now - (e[1] + w.timeout_ms) < w.recent_ms]
    return st, delta


def apply_event(
    st: SessionState | None, ev: Event, now: int, w: Windows, partition: int = -1
) -> tuple[SessionState, Contribution]:
    """Fold one event into the session; return the new state and the gauge delta."""
    if st is None:
        st = SessionState(seller=ev.seller_id, partition=partition)
    else:
        # A shallow copy: ``st`` stays as it was. The containers changed in place below (trail,
        # failures) are copied where they change; the others are only ever replaced, never mutated.
        st = msgspec.structs.replace(st)
        if partition >= 0:
            st.partition = partition
    if ev.backfill:
        return st, {}
    r = ev.received_at
    st.bot = st.bot or ev.is_bot
    loc = location_of(ev)
    _place(st, r, _order(ev), loc, w)
    t = ev.type
    if t == "page_view":
        if ev.page is not None:
            eid = ev.event_id
            for seen in st.trail:  # a redelivered page view is not seen twice
                if seen[0] == eid:
                    break
            else:
                st.pages_seen += 1
                trail = st.trail = list(st.trail)
                # The trail is kept sorted by received_at (stable: equal times in arrival order), so an event
                # no older than its last entry goes at the end as the sort would put it; only a late one sorts.
                in_order = not trail or r >= trail[-1][1]
                trail.append((eid, r, loc or "other"))
                if not in_order:
                    trail.sort(key=_received)
                    del trail[:-MAX_TRAIL]
                elif len(trail) > MAX_TRAIL:
                    del trail[:-MAX_TRAIL]
    elif t == "checkout_started":
        if ev.checkout is not None and r >= st.checkout_at:
            st.checkout_at = r
            st.checkout = msgspec.to_builtins(ev.checkout)
    elif t == "payment_succeeded":
        st.purchased_at = max(st.purchased_at, r)
    elif t == "payment_failed" and now - r < w.recent_ms:
        st.failures = dict(st.failures)
        st.failures[ev.event_id] = r
        if len(st.failures) > MAX_FAILURES:
            del st.failures[min(st.failures.items(), key=lambda f: (f[1], f[0]))[0]]
    return _settle(st, now, w)


def _received(entry: tuple[str, int, str]) -> int:
    return entry[1]


def _order(ev: Event) -> str:
    """What orders events of equal received_at (the events of one request): the sender's ts, then the
    event's position in its request (``seq``, stamped by the gateway), then the event id (only ever
    deciding between requests received in the same millisecond). So the last event a storefront sent
    decides the location, in whatever order the events are delivered, replayed or redelivered. Fixed
    widths make string order the order of the numbers (ts: epoch ms; seq: < 100,000, a request holds
    at most 500 events)."""
    # f"{ev.ts:015d}|{ev.seq:05d}|{ev.event_id}" spelled with zfill (the same string for any int, the sign
    # first): a third of the time, and it is built for every event.
    return str(ev.ts).zfill(15) + "|" + str(ev.seq).zfill(5) + "|" + ev.event_id


def _place(st: SessionState, r: int, eid: str, loc: str | None, w: Windows) -> None:
    """Put the event into its visit. Visits are split where events are ``timeout`` apart; an event
    delivered late can fall between two visits and join them, so visits are merged again each time."""
    if not st.ended:  # the common cases, without the general merge below (same result)
        if not st.last_seen:  # the first event: one visit
            st.first_seen = st.last_seen = r
            if loc is not None:
                st.loc_at, st.loc_eid, st.loc = r, eid, loc
            else:
                st.loc_at, st.loc_eid, st.loc = 0, "", None
            return
        if st.first_seen <= r and r - st.last_seen < w.timeout_ms:  # within the current visit
            if r > st.last_seen:
                st.last_seen = r
            if loc is not None and (st.loc is None or (r, eid) > (st.loc_at, st.loc_eid)):
                st.loc_at, st.loc_eid, st.loc = r, eid, loc
            return
    _merge_visits(st, r, eid, loc, w)


def _merge_visits(st: SessionState, r: int, eid: str, loc: str | None, w: Windows) -> None:
    """``_place`` in general: the event as a visit of its own among the others, then merged."""
    visits: list[Visit] = list(st.ended)
    if st.last_seen:
        visits.append((st.first_seen, st.last_seen, st.loc_at, st.loc_eid, st.loc))
    visits.append((r, r, r if loc is not None else 0, eid if loc is not None else "", loc))
    visits.sort(key=lambda v: v[0])
    merged: list[Visit] = [visits[0]]
    for v in visits[1:]:
        first, last, at, at_eid, where = merged[-1]
        if v[0] - last < w.timeout_ms:
            if v[4] is not None and (where is None or (v[2], v[3]) > (at, at_eid)):
                at, at_eid, where = v[2], v[3], v[4]
            merged[-1] = (first, max(last, v[1]), at, at_eid, where)
        else:
            merged.append(v)
    *ended, (st.first_seen, st.last_seen, st.loc_at, st.loc_eid, st.loc) = merged
    st.ended = ended


def advance(st: SessionState, now: int, w: Windows) -> tuple[SessionState, Contribution]:
    """Let time pass without an event (timer tick); return the new state and the gauge delta."""
    st = msgspec.structs.replace(st)  # _settle replaces emitted, failures and ended, never mutates them
    return _settle(st, now, w)


def add_into(total: Counter[str] | dict[str, int], delta: Contribution) -> None:
    """Add a delta into running totals, dropping keys that fall to zero."""
    for k, v in delta.items():
        n = total.get(k, 0) + v
        if n:
            total[k] = n
        else:
            total.pop(k, None)


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(SessionState)


def dumps(st: SessionState) -> bytes:
    return _enc.encode(st)


def loads(data: bytes) -> SessionState:
    return _dec.decode(data)
