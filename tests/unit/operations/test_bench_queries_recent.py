"""``bench queries``' recent state (issue #19): the unfolded events a running system has between folds are
the last seconds of a seller's traffic, mostly of sessions whose earlier events were folded, plus a few late
ones of sessions that started within the last day; not events spread over the 30 days."""

from __future__ import annotations

import numpy as np

from operations.bench import queries as q


def test_a_window_of_the_steady_traffic_holds_the_rate_mostly_of_sessions_begun_before_it():
    origin = 1_000_000_000_000
    before = origin + q.EVENTS_PER_SESSION * 60_000  # every session of the window has started by then
    window = q.RECENT_STEP * 1000 // q.RECENT_RATE
    sess, ts = q.steady(before, before + window, origin)
    assert len(sess) == q.RECENT_STEP == q.RECENT_RATE * window // 1000
    assert ts.min() >= before and ts.max() < before + window
    assert len(set(zip(sess.tolist(), ts.tolist()))) == len(sess)
    assert sess.min() >= q.RECENT_SESSIONS
    # the folded part before the window holds each window session's earlier events, a minute apart
    old_sess, old_ts = q.steady(origin, before, origin)
    earlier = set(zip(old_sess.tolist(), old_ts.tolist()))
    continuing = sorted({(s, t) for s, t in zip(sess.tolist(), ts.tolist()) if (s, t - 60_000) in earlier})
    assert len(continuing) >= 0.9 * len(sess)
    starts = {}
    for s, t in zip(np.concatenate([old_sess, sess]).tolist(), np.concatenate([old_ts, ts]).tolist()):
        starts.setdefault(s, []).append(t)
    for times in starts.values():
        times.sort()
        assert times == list(range(times[0], times[0] + 60_000 * len(times), 60_000))
        assert len(times) <= q.EVENTS_PER_SESSION
    # the next window continues the traffic: no event twice
    nxt_sess, nxt_ts = q.steady(before + window, before + 2 * window, origin)
    assert len(nxt_sess) == q.RECENT_STEP
    assert not set(zip(nxt_sess.tolist(), nxt_ts.tolist())) & set(zip(sess.tolist(), ts.tolist()))


def test_late_events_are_of_history_sessions_of_the_last_day():
    end_ms = 1_000_000_000_000
    now_ms = end_ms + 600_000
    sess, ts = q.late(np.random.default_rng(1), 1_000, end_ms, now_ms, 1_000_000)
    assert len(set(sess.tolist())) == 1_000
    start = q.session_start(sess, end_ms)
    assert (start >= now_ms - 86_400_000).all() and (start < now_ms - 3_600_000).all()
    assert ((ts - start) % 60_000 == 0).all() and ((ts - start) // 60_000 < q.EVENTS_PER_SESSION).all()
    assert (sess < 1_000_000).all()


def test_the_history_chunk_is_the_same_events_as_before_the_split():
    # chunk() now builds its table with events(): the same random draws in the same order, so a history
    # built by this bench is the one earlier rounds measured (the first events of seed 42, checked by value)
    t = q.chunk(np.random.default_rng(42), 0, 20, q.SELLER, 1_000_000_000_000, 5)
    assert t.column("kafka_offset").to_pylist() == list(range(5, 25))
    assert t.column("session_id").to_pylist() == [str(10_000_000 + i // 10) for i in range(20)]
    ts = [int(x.timestamp() * 1000) for x in t.column("ts").to_pylist()]
    start = q.session_start(np.array([0, 1]), 1_000_000_000_000)
    assert ts == [int(start[i // 10]) + (i % 10) * 60_000 for i in range(20)]
