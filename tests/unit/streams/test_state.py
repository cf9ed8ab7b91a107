"""The session state machine against a brute-force recount written here from docs/live-semantics.md alone.

Random event sequences with random timing, bounded out-of-order delivery across topics and
redeliveries; after every step the sums of the deltas must equal the recount from the raw events."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.contract import Checkout, Customer, Event, Item, Page, Payment
from streams import state as sm

W = sm.Windows(live_ms=10_000, timeout_ms=60_000, recent_ms=90_000)
T0 = 1_700_000_000_000

# ---------------------------------------------------------------- the oracle (independent of streams)


def _where(ev: Event) -> str | None:
    if ev.type == "checkout_started":
        return "checkout"
    if ev.type in ("payment_started", "payment_failed"):
        return "payment"
    if ev.type == "payment_succeeded":
        return "purchased"
    if ev.page is None:
        return None
    if ev.page.type == "category":
        return "category:" + ev.page.category
    if ev.page.type == "offer":
        return "offer:" + ev.page.offer_id
    return ev.page.type


def recount(delivered: list[Event], now: int) -> dict[str, Counter]:
    """Per seller, what docs/live-semantics.md says the gauges are at ``now`` given the events delivered so far."""
    by_session: dict[str, dict[str, Event]] = defaultdict(dict)
    for ev in delivered:
        if not ev.backfill:
            by_session[ev.session_id][ev.event_id] = ev  # de-duplicated by event id
    out: dict[str, Counter] = defaultdict(Counter)
    for evs in by_session.values():
        events = sorted(evs.values(), key=lambda e: (e.received_at, e.ts, e.seq, e.event_id))
        if any(e.is_bot for e in events):  # bots are stored, flagged, never counted
            continue
        c = out[events[0].seller_id]
        last = events[-1].received_at
        # Visits: split where the gap between events reaches the session timeout. A location is that
        # of the latest event that has one within the same visit ("other" when none has).
        visits: list[list[Event]] = [[events[0]]]
        for a, b in zip(events, events[1:]):
            if b.received_at - a.received_at >= W.timeout_ms:
                visits.append([])
            visits[-1].append(b)
        located = [e for e in visits[-1] if _where(e) is not None]
        where = _where(located[-1]) if located else "other"
        if now - last < W.live_ms and where != "purchased":
            c["live:" + where] += 1
        if now - last < W.timeout_ms:
            c["active"] += 1
        if any(e.type == "payment_succeeded" and now - e.received_at < W.recent_ms for e in events):
            c["purchased"] += 1
        c["failures"] += sum(1 for e in events if e.type == "payment_failed" and now - e.received_at < W.recent_ms)
        for visit in visits:  # a visit that ended in checkout or payment is an abandonment there
            end = visit[-1].received_at + W.timeout_ms
            if end <= now and now - end < W.recent_ms:
                steps = [_where(e) for e in visit if _where(e) is not None]
                step = steps[-1] if steps else "other"
                if step in ("checkout", "payment"):
                    c["abandoned:" + step] += 1
    return {s: Counter({k: v for k, v in c.items() if v}) for s, c in out.items() if any(c.values())}


# ---------------------------------------------------------------- random event sequences

PAGES = [
    ("home", None, None),
    ("category", "lamps", None),
    ("category", "rugs", None),
    ("offer", None, "o-1"),
    ("offer", None, "o-2"),
    ("product", None, None),
    ("cart", None, None),
    ("checkout", None, None),
    ("payment", None, None),
    ("other", None, None),
]
TYPES = ["page_view"] * 5 + ["heartbeat", "checkout_started", "payment_started", "payment_succeeded", "payment_failed"]
GAPS = st.one_of(
    st.integers(0, 2_000),
    st.sampled_from(
        [
            W.live_ms - 1,
            W.live_ms,
            W.live_ms + 1,
            W.timeout_ms - 1,
            W.timeout_ms,
            W.timeout_ms + 5,
            W.timeout_ms + W.recent_ms,
        ]
    ),
    st.integers(0, 200_000),
)


def make_event(kind: int, page: int, session: int, seller: int, r: int, bot: bool, backfill: bool) -> Event:
    t = TYPES[kind]
    pt, cat, offer = PAGES[page]
    ev = Event(
        event_id=str(uuid.uuid4()),
        type=t,
        seller_id=f"seller-{seller}",
        session_id=f"session-{session:04d}",
        ts=r,
        received_at=r,
        is_bot=bot,
        backfill=backfill,
    )
    if t == "page_view" or (t == "heartbeat" and page % 2):
        ev.page = Page(type=pt, category=cat, offer_id=offer)
    if t == "checkout_started":
        ev.checkout = Checkout(items=[Item(sku="S", name="Lamp", qty=1, unit_price=5.0)], total=5.0, currency="EUR")
        ev.customer = Customer(email="a@b.c")
    if t.startswith("payment_"):
        ev.payment = Payment(
            method="card",
            amount=5.0,
            currency="EUR",
            order_id="o",
            error_code="declined" if t == "payment_failed" else None,
        )
    return ev


event_specs = st.lists(
    st.tuples(
        st.integers(0, len(TYPES) - 1),
        st.integers(0, len(PAGES) - 1),
        st.integers(0, 5),
        GAPS,
        st.integers(0, 3_000),
        st.integers(0, 30),
        st.integers(0, 40),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(event_specs, st.lists(st.integers(0, 3 * W.timeout_ms), max_size=10))
def test_gauges_equal_a_recount_after_every_step(specs, tick_gaps):
    # Build events in gateway order (received_at), then deliver each after a random delay of at most
    # 3 s (different topics are consumed at different speeds) and some twice (redelivery). Events with no
    # gap between them are one request: the gateway numbers them (seq) in the order sent.
    r, seq = T0, 0
    events = []
    for kind, page, session, gap, delay, bot_roll, redeliver in specs:
        r, seq = r + gap, (seq + 1 if gap == 0 and events else 0)
        ev = make_event(kind, page, session, session % 2, r, bot=session == 5, backfill=bot_roll == 1)
        ev.seq = seq
        events.append((r + delay, ev))
        if redeliver < 4:
            events.append((r + delay + redeliver * 40_000, ev))
    deliveries = sorted(events, key=lambda x: x[0])
    last = deliveries[-1][0]
    ticks = []
    t = T0
    for g in tick_gaps:
        t += g
        ticks.append((t, None))
    timeline = sorted(deliveries + ticks + [(last + W.timeout_ms + W.recent_ms + 1, None)], key=lambda x: x[0])

    states: dict[str, bytes] = {}
    totals: dict[str, Counter] = defaultdict(Counter)
    delivered: list[Event] = []
    for now, ev in timeline:
        if ev is not None:
            delivered.append(ev)
            raw = states.get(ev.session_id)
            new, delta = sm.apply_event(sm.loads(raw) if raw else None, ev, now, W)
            _keep(states, ev.session_id, new, delta, totals, now)
        for sid, raw in list(states.items()):  # a tick: time passes for every session
            new, delta = sm.advance(sm.loads(raw), now, W)
            _keep(states, sid, new, delta, totals, now)
        got = {s: Counter({k: v for k, v in c.items() if v}) for s, c in totals.items() if any(c.values())}
        assert got == recount(delivered, now), f"at {now - T0} ms"
        for raw in states.values():  # nothing changes before next_change: the expiry timer is enough
            s0 = sm.loads(raw)
            nxt = sm.next_change(s0, now, W)
            later = (nxt - 1) if nxt is not None else now + 10 * W.recent_ms
            assert sm.contribution(s0, later, W) == sm.contribution(s0, now, W)
    assert not states, "every session state is dropped once it can never count again"


def _keep(states, sid, new, delta, totals, now):
    sm.add_into(totals[new.seller], delta)
    if sm.is_finished(new, now, W):
        states.pop(sid, None)
    else:
        states[sid] = sm.dumps(new)


def _ev(**kw):
    base = dict(kind=0, page=0, session=1, seller=0, r=T0, bot=False, backfill=False)
    base.update(kw)
    return make_event(**base)


def test_purchase_leaves_payment_and_counts_for_the_recent_window():
    started = make_event(TYPES.index("payment_started"), 0, 1, 0, T0, False, False)
    s, d = sm.apply_event(None, started, T0, W)
    assert d == {"live:payment": 1, "active": 1}
    ok = make_event(TYPES.index("payment_succeeded"), 0, 1, 0, T0 + 3, False, False)
    s, d = sm.apply_event(s, ok, T0 + 3, W)
    assert d == {"live:payment": -1, "purchased": 1}
    s, d = sm.advance(s, T0 + 3 + W.timeout_ms, W)
    assert d == {"active": -1}  # purchased sessions are not abandonments
    s, d = sm.advance(s, T0 + 3 + W.recent_ms, W)
    assert d == {"purchased": -1}


def test_a_session_ending_in_checkout_is_one_abandonment_even_if_it_comes_back():
    co = make_event(TYPES.index("checkout_started"), 0, 1, 0, T0, False, False)
    s, _ = sm.apply_event(None, co, T0, W)
    s, d = sm.advance(s, T0 + W.timeout_ms, W)
    assert d == {"live:checkout": -1, "active": -1, "abandoned:checkout": 1}
    back = make_event(0, 0, 1, 0, T0 + W.timeout_ms + 10, False, False)
    s, d = sm.apply_event(s, back, T0 + W.timeout_ms + 10, W)
    assert d == {"active": 1, "live:home": 1}  # still one abandonment, plus the new visit


def test_a_redelivered_event_changes_nothing():
    ev = make_event(TYPES.index("payment_failed"), 0, 1, 0, T0, False, False)
    s, d = sm.apply_event(None, ev, T0, W)
    assert d == {"live:payment": 1, "active": 1, "failures": 1}
    s2, d2 = sm.apply_event(s, ev, T0 + 5, W)
    assert d2 == {} and s2.failures == s.failures


def test_bots_are_never_counted():
    s, d = sm.apply_event(None, _ev(), T0, W)
    assert d == {"live:home": 1, "active": 1}
    s, d = sm.apply_event(s, _ev(bot=True, r=T0 + 1), T0 + 1, W)
    assert d == {"live:home": -1, "active": -1}


def test_events_of_one_request_are_ordered_by_the_senders_time():
    """A batch shares received_at; its later event (by ts) decides the location whatever the ids."""
    for first_id, second_id in (("ffff", "0000"), ("0000", "ffff")):
        checkout = Event(
            event_id=first_id,
            type="page_view",
            seller_id="s",
            session_id="sess-0001",
            ts=1_000,
            received_at=5_000,
            page=Page(type="checkout"),
        )
        failed = Event(
            event_id=second_id,
            type="payment_failed",
            seller_id="s",
            session_id="sess-0001",
            ts=1_001,
            received_at=5_000,
        )
        for order in ((checkout, failed), (failed, checkout)):
            st = None
            for ev in order:
                st, _ = sm.apply_event(st, ev, 5_010, W)
            assert sm.contribution(st, 5_010, W)["live:payment"] == 1


# ---------------------------------------------------------------- the order of one request's events

REQUEST_PAGES = [
    Page(type="home"),
    Page(type="category", category="lamps"),
    Page(type="category", category="rugs"),
    Page(type="offer", offer_id="o-1"),
    Page(type="cart"),
    None,
]  # None: a heartbeat (no location)


@st.composite
def requests(draw):
    """One request of a session, as the gateway stamps it: one received_at, one ts for all (a tracker's
    batch made within the same millisecond), ``seq`` = position, random ids (the order the ids sort in says
    nothing about the order sent); then a delivery order (any permutation) with some events delivered
    twice (a redelivery or a replay after a crash)."""
    pages = draw(st.lists(st.sampled_from(REQUEST_PAGES), min_size=2, max_size=8))
    ids = draw(st.lists(st.uuids().map(str), min_size=len(pages), max_size=len(pages), unique=True))
    events = [
        Event(
            event_id=eid,
            type="page_view" if p is not None else "heartbeat",
            seller_id="s",
            session_id="sess-0001",
            ts=T0 - 2_000,
            received_at=T0,
            seq=i,
            page=p,
        )
        for i, (eid, p) in enumerate(zip(ids, pages))
    ]
    order = draw(st.permutations(range(len(events))))
    again = draw(st.lists(st.sampled_from(range(len(events))), max_size=4))
    return events, [events[i] for i in order] + [events[i] for i in again]


@settings(max_examples=500, deadline=None)
@given(requests())
def test_equal_ts_in_one_request_resolves_to_the_last_event_sent_in_any_delivery_order(request):
    events, delivered = request
    sent_last = [_where(e) for e in events if _where(e) is not None]
    want = {f"live:{sent_last[-1] if sent_last else 'other'}": 1, "active": 1}
    st_, totals = None, Counter()
    for i, ev in enumerate(delivered):
        st_, delta = sm.apply_event(sm.loads(sm.dumps(st_)) if st_ else None, ev, T0 + 10, W)
        sm.add_into(totals, delta)
        if i >= len(events) - 1:  # every event delivered once: the location is final, and stays under replays
            assert sm.contribution(st_, T0 + 10, W) == want == dict(totals)
    assert recount(delivered, T0 + 10) == {"s": Counter(want)}


def test_seq_decides_only_between_equal_ts():
    """The sender's ts still orders a request's events first: a later ts sent earlier in the body wins."""
    late = Event(
        event_id="0000",
        type="page_view",
        seller_id="s",
        session_id="sess-0001",
        ts=1_001,
        received_at=5_000,
        seq=0,
        page=Page(type="checkout"),
    )
    early = Event(
        event_id="ffff",
        type="page_view",
        seller_id="s",
        session_id="sess-0001",
        ts=1_000,
        received_at=5_000,
        seq=1,
        page=Page(type="home"),
    )
    for order in ((late, early), (early, late)):
        st_ = None
        for ev in order:
            st_, _ = sm.apply_event(st_, ev, 5_010, W)
        assert sm.contribution(st_, 5_010, W)["live:checkout"] == 1
