"""The state machine's shortcuts (``streams/state.py``) give what its general forms give: an event placed
without the visits' merge, a trail appended without a sort, states copied shallowly. The gauges are
checked against a recount in test_state.py; these check the fields a recount does not see (the
location's tie-breakers, the trail) and that a fold never changes the state it was given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.contract import Event, Page
from streams import state as sm
from tests.unit.streams.test_state import T0, W, event_specs, make_event

LOCS = st.sampled_from([None, "home", "category:a", "offer:o-1", "checkout", "payment"])
EIDS = st.sampled_from(["", "1|a", "1|b", "2|a"])  # few, so that ties between equal times come up


def _visit_fields(s: sm.SessionState) -> tuple:
    return (s.first_seen, s.last_seen, s.loc_at, s.loc_eid, s.loc, s.ended)


@st.composite
def placed(draw):
    """A session with no earlier visit (the shortcuts' case): new, or one visit with its location."""
    s = sm.SessionState(seller="s")
    if draw(st.booleans()):
        first = T0 + draw(st.integers(0, 3 * W.timeout_ms))
        s.first_seen, s.last_seen = first, first + draw(st.integers(0, W.timeout_ms))
        loc = draw(LOCS)
        if loc is not None:
            s.loc, s.loc_at, s.loc_eid = loc, draw(st.integers(s.first_seen, s.last_seen)), draw(EIDS)
    # The event: before, inside or after the visit, up to past its timeout, at its edges exactly.
    base = s.last_seen or T0
    r = base + draw(
        st.one_of(
            st.integers(-2 * W.timeout_ms, 2 * W.timeout_ms),
            st.sampled_from([0, -1, 1, W.timeout_ms - 1, W.timeout_ms, s.first_seen - base if s.last_seen else 0]),
        )
    )
    return s, r, draw(EIDS), draw(LOCS)


@settings(max_examples=2_000, deadline=None)
@given(placed())
def test_placing_an_event_without_the_merge_gives_the_merge(case):
    s, r, eid, loc = case
    fast, general = sm.msgspec.structs.replace(s), sm.msgspec.structs.replace(s)
    sm._place(fast, r, eid, loc, W)
    sm._merge_visits(general, r, eid, loc, W)
    assert _visit_fields(fast) == _visit_fields(general)


def _trail_sorted_every_time(events: list[Event]) -> list[tuple[str, int, str]]:
    """The trail as it was kept before: every new page view appended, then all sorted, then cut."""
    trail: list[tuple[str, int, str]] = []
    for ev in events:
        if all(e != ev.event_id for e, _, _ in trail):
            trail.append((ev.event_id, ev.received_at, sm.location_of(ev) or "other"))
            trail.sort(key=lambda x: x[1])
            del trail[: -sm.MAX_TRAIL]
    return trail


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(-5_000, 5_000), st.sampled_from(["home", "category"])),
        min_size=1,
        max_size=80,
    )
)
def test_the_trail_is_what_sorting_after_every_page_view_gives(views):
    # Page views of one session, some late (received before ones already folded), some redelivered
    # (the same id again), more than the trail keeps.
    events = [
        Event(
            event_id=f"e{i}",
            type="page_view",
            seller_id="s",
            session_id="x",
            ts=T0 + 10_000 + late,
            received_at=T0 + 10_000 + late,
            page=Page(type=kind, category="a" if kind == "category" else None),
        )
        for i, late, kind in views
    ]
    state = None
    for ev in events:
        state, _ = sm.apply_event(state, ev, T0 + 20_000, W)
    assert state is not None
    assert state.trail == _trail_sorted_every_time(events)


@settings(max_examples=300, deadline=None)
@given(event_specs, st.lists(st.integers(0, 3 * W.timeout_ms), max_size=5))
def test_a_fold_leaves_the_state_it_was_given_as_it_was(specs, tick_gaps):
    # The states are copied shallowly now; a container changed in place would change the caller's old
    # state (which the alerts read) and the cache's decoded state. Bytes before and after must agree.
    # Events late by up to 3 s and some twice, as in test_state.py's recount test.
    r = now = T0
    states: dict[str, sm.SessionState] = {}
    for kind, page, session, gap, delay, bot_roll, redeliver in specs:
        r += gap
        now = max(now, r + delay)
        ev = make_event(kind, page, session, session % 2, r, bot=session == 5, backfill=bot_roll == 1)
        for _ in range(2 if redeliver < 4 else 1):
            old = states.get(ev.session_id)
            before = sm.dumps(old) if old is not None else None
            new, _ = sm.apply_event(old, ev, now, W)
            if old is not None:
                assert sm.dumps(old) == before
            states[ev.session_id] = new
    for gap in tick_gaps:
        now += gap
        for key, old in list(states.items()):
            before = sm.dumps(old)
            states[key], _ = sm.advance(old, now, W)
            assert sm.dumps(old) == before
