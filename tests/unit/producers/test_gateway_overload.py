"""The gateway's overload policy (producers/gateway/overload.py): who is refused while live processing is
behind, and when refusals stop. Pure logic: readings are handed in, time is a number."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.settings import Settings
from producers.gateway.overload import MAX_RETRY_AFTER_S, Reading, Shedder, heavy_sellers
from producers.gateway.worker_lag import GROWTH_MIN_S, GROWTH_SPAN_S, LagProbe, SharedReading

W = 1.0  # window, s
HIGH, LOW = 1000, 200


class Feed:
    """The readings a probe would give, set by the test."""

    def __init__(self) -> None:
        self.reading: Reading | None = None

    def __call__(self) -> Reading | None:
        return self.reading

    def set(
        self, at: float, lag: int, progressed_at: float | None = None, drain: float = 100.0, growth: float = 100.0
    ) -> None:
        """A reading; by default the lag grows (arrivals outrun the workers), ``growth`` <= 0: it shrinks."""
        self.reading = Reading(at, lag, at if progressed_at is None else progressed_at, drain, growth)


def shedder(feed: Feed, share: float = 4.0, stalled_s: float = 5.0, stale_s: float = 3.0) -> Shedder:
    return Shedder(
        feed, high=HIGH, low=LOW, share=share, window_s=W, stalled_s=stalled_s, stale_s=stale_s, min_events_per_s=10
    )


def window(s: Shedder, sends: dict[str, int], start: float, per_request: int = 10) -> dict[str, int]:
    """Send every seller's events over one window from ``start`` in requests of ``per_request``, interleaved;
    returns each seller's refused events. The window starts with a tick (requests look at the latest reading
    every ``TICK_S``), so its requests all see the reading set before it."""
    s.tick(start)
    refused = dict.fromkeys(sends, 0)
    left = dict(sends)
    t = start
    step = W / (sum(-(-n // per_request) for n in sends.values()) + 1)  # every request inside the window
    while any(left.values()):
        for seller, n in left.items():
            if n:
                k = min(n, per_request)
                left[seller] -= k
                if s.admit(seller, k, t):
                    refused[seller] += k
                t += step
    return refused


def test_a_flooding_seller_is_refused_while_behind_and_a_small_one_is_not():
    feed = Feed()
    s = shedder(feed)
    window(s, {"flood": 5000, "small": 50}, 0.0)
    feed.set(1.0, lag=5000, drain=1000.0)
    refused = window(s, {"flood": 5000, "small": 50}, 1.0)
    assert refused["small"] == 0 and refused["flood"] > 4000
    wait = s.admit("flood", 10, 1.99)
    assert wait == 5  # the lag over the low mark (4,800) at the measured drain (1,000/s), rounded up
    why = s.why("flood", wait)
    assert "behind by 5000 events" in why and "seller flood sent" in why and f"retry in {wait} s" in why


def test_refusals_stop_once_the_lag_is_back_under_the_low_mark_and_not_before(caplog):
    caplog.set_level(logging.WARNING, "livemetrics.gateway")
    feed = Feed()
    s = shedder(feed)
    window(s, {"flood": 5000, "small": 50}, 0.0)
    feed.set(1.0, lag=5000)
    assert window(s, {"flood": 5000, "small": 50}, 1.0)["flood"]
    feed.set(2.0, lag=LOW + 1, growth=-500.0)  # under the high mark, still over the low one: still behind
    assert window(s, {"flood": 5000, "small": 50}, 2.0)["flood"]
    feed.set(3.0, lag=LOW)
    assert window(s, {"flood": 5000, "small": 50}, 3.0) == {"flood": 0, "small": 0}
    feed.set(4.0, lag=HIGH - 1)  # not behind again until the high mark
    assert window(s, {"flood": 5000, "small": 50}, 4.0) == {"flood": 0, "small": 0}
    feed.set(5.0, lag=HIGH)
    assert window(s, {"flood": 5000, "small": 50}, 5.0)["flood"]
    said = [r.getMessage() for r in caplog.records]  # one line per change, not per request or reading
    assert len(said) == 3 and "behind by 5000 events" in said[0] and "refusing the sellers" in said[0], said
    assert f"back at {LOW} events" in said[1] and "behind by 1000 events" in said[2], said


def test_a_stopped_worker_is_not_an_overload(caplog):
    """Committed offsets that do not move: no worker folds, the backlog waits in Kafka; nobody refused."""
    caplog.set_level(logging.WARNING, "livemetrics.gateway")
    feed = Feed()
    s = shedder(feed, stalled_s=5.0)
    window(s, {"flood": 5000, "small": 50}, 0.0)
    feed.set(1.0, lag=50_000, progressed_at=1.0)
    assert window(s, {"flood": 5000, "small": 50}, 1.0)["flood"]  # moving until now: behind
    for t in range(2, 6):
        feed.set(float(t), lag=50_000 + t * 5000, progressed_at=1.0)
        assert window(s, {"flood": 5000, "small": 50}, float(t))["flood"]
    feed.set(6.0, lag=80_000, progressed_at=1.0)  # 5 s without a commit moving
    assert window(s, {"flood": 5000, "small": 50}, 6.0) == {"flood": 0, "small": 0}
    assert "a stopped worker, not an overload" in caplog.records[-1].getMessage()
    # A worker is back: the backlog drains (the lag shrinks), nobody is refused for it.
    feed.set(7.0, lag=80_000, progressed_at=7.0, growth=0.0)  # growth unknown: the first reading after the stop
    assert window(s, {"flood": 5000, "small": 50}, 7.0) == {"flood": 0, "small": 0}
    feed.set(8.0, lag=70_000, progressed_at=8.0, growth=-10_000.0)
    assert window(s, {"flood": 5000, "small": 50}, 8.0) == {"flood": 0, "small": 0}
    feed.set(9.0, lag=75_000, progressed_at=9.0, growth=5000.0)  # the flood outruns the worker again: refused
    assert window(s, {"flood": 5000, "small": 50}, 9.0)["flood"]


def test_an_old_reading_refuses_nobody():
    feed = Feed()
    s = shedder(feed, stale_s=3.0)
    window(s, {"flood": 5000, "small": 50}, 0.0)
    feed.set(1.0, lag=5000)
    assert window(s, {"flood": 5000, "small": 50}, 1.0)["flood"]
    assert window(s, {"flood": 5000, "small": 50}, 4.5) == {"flood": 0, "small": 0}  # no reading since 1.0


def test_the_only_seller_sending_is_refused_while_behind():
    feed = Feed()
    s = shedder(feed)
    window(s, {"alone": 3000}, 0.0)
    feed.set(1.0, lag=5000)
    assert window(s, {"alone": 3000}, 1.0)["alone"] > 2000
    assert "the only seller sending" in s.why("alone", 1)


def test_a_seller_under_a_tenth_of_the_workers_rate_per_process_is_never_refused():
    """Shares are counted per gateway process: a medium seller whose one connection landed on a process that
    serves only small sellers (the flood on another) looks heavy there. Under FOLD_FLOOR of the workers'
    fold rate per process it is not what holds them back: not refused; a flood over it is."""
    feed = Feed()
    s = Shedder(feed, high=HIGH, low=LOW, share=4, window_s=W, stalled_s=5, stale_s=3, processes=2)
    mix = {"medium": 900, "tiny-1": 10, "tiny-2": 10}
    window(s, mix, 0.0)
    feed.set(1.0, lag=5000, drain=20_000.0)  # 0.1 x 20,000 / 2 processes: 1,000 events/s to be refused
    assert window(s, mix, 1.0) == {"medium": 0, "tiny-1": 0, "tiny-2": 0}
    for t in (2.0, 3.0):  # alone on its process, too (the window at 3 s decides on the one at 2 s)
        feed.set(t, lag=5000, drain=20_000.0)
        assert window(s, {"medium": 900}, t) == {"medium": 0}
    for t in (4.0, 5.0):
        feed.set(t, lag=5000, drain=20_000.0)
        refused = window(s, {"flood": 1500, "tiny-1": 10}, t)
    assert refused["flood"] > 1000 and not refused["tiny-1"]
    assert s.floor_events() == 1000


def test_nothing_is_refused_when_not_behind_or_when_off():
    feed = Feed()
    s = shedder(feed)
    feed.set(0.0, lag=HIGH - 1)
    for start in (0.0, 1.0, 2.0):
        assert window(s, {"flood": 5000, "small": 50}, start) == {"flood": 0, "small": 0}
    off = Shedder(feed, high=0, low=0, share=4, window_s=W, stalled_s=5, stale_s=3)
    feed.set(3.0, lag=10**9)
    assert not off.enabled and off.admit("flood", 100, 3.0) == 0


def test_a_seller_that_backs_off_is_let_in_again():
    feed = Feed()
    s = shedder(feed)
    window(s, {"flood": 5000, "small": 50}, 0.0)
    feed.set(1.0, lag=5000)
    assert window(s, {"flood": 5000, "small": 50}, 1.0)["flood"]
    feed.set(2.0, lag=5000)
    window(s, {"flood": 60, "small": 50}, 2.0)  # it respects Retry-After: sends its share
    feed.set(3.0, lag=4000)
    assert window(s, {"flood": 60, "small": 50}, 3.0) == {"flood": 0, "small": 0}


def test_retry_after_is_bounded():
    feed = Feed()
    s = shedder(feed)
    feed.set(0.0, lag=10**9, drain=1.0)
    s.tick(0.0)
    assert s.retry_after() == MAX_RETRY_AFTER_S
    feed.set(1.0, lag=HIGH, drain=0.0)  # rate unknown: a window
    s.tick(1.0)
    assert s.retry_after() == 1


def test_shared_reading_round_trip():
    shared = SharedReading()
    assert shared.read() is None
    r = Reading(12.5, 123_456, 11.0, 2500.5, -1234.5)
    shared.write(r)
    assert shared.read() == r
    shared.array[0] += 1  # a write in progress
    assert shared.read() is None


counts = st.dictionaries(st.text(min_size=1, max_size=3), st.integers(0, 100_000), min_size=1, max_size=30)


@given(counts, st.floats(1.0, 20.0), st.floats(0.0, 1000.0))
def test_a_seller_at_or_under_the_mean_is_never_heavy(cs, share, min_events):
    heavy = heavy_sellers(cs, share, min_events)
    total = sum(cs.values())
    for seller, c in cs.items():
        if len(cs) > 1 and c * len(cs) <= total:
            assert seller not in heavy
        if c < min_events:
            assert seller not in heavy
    if len(cs) == 1:
        ((seller, c),) = cs.items()
        assert (seller in heavy) == (c >= min_events)


@given(counts, st.floats(1.0, 20.0))
def test_heavier_is_never_less_heavy(cs, share):
    """Within a window, a seller sending more than a heavy one is heavy too."""
    heavy = heavy_sellers(cs, share, 0)
    for seller in heavy:
        for other, c in cs.items():
            if c > cs[seller]:
                assert other in heavy


sends = st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 3000), min_size=1, max_size=8)


growths = st.sampled_from([-5000.0, -1.0, 0.0, 1.0, 5000.0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(sends, st.integers(0, 20_000), st.booleans(), growths), min_size=1, max_size=8),
    st.floats(1.0, 8.0),
)
def test_policy_properties_over_a_run(windows, share):
    """Over any run of windows and lag readings: nobody is refused unless behind (the lag reached the high
    mark while growing and moving, and has not been back at or under the low mark nor stalled since), fresh
    and moving; a seller whose last window's count was at or under that window's mean (with others sending)
    is never refused; and once a reading at or under the low mark is taken, nothing is refused until one at
    or over the high mark that grows. While behind and moving, every heavy seller of the last window is
    refused."""
    feed = Feed()
    s = shedder(feed, share=share)
    behind = False
    previous: dict[str, int] = {}
    for i, (sent, lag, moving, growth) in enumerate(windows):
        t = float(i)
        feed.set(t, lag, progressed_at=t if moving else -100.0, growth=growth)
        stalled = not moving and lag > 0
        behind = (lag > LOW if behind else lag >= HIGH and growth > 0) and not stalled
        refused = window(s, sent, t)
        total, k = sum(previous.values()), len(previous)
        for seller, n in refused.items():
            if not n:
                continue
            assert behind and moving
            assert k == 1 or previous.get(seller, 0) * k > total
        if behind and moving:  # and the other way round: every heavy seller of the last window is refused
            for seller in heavy_sellers(previous, share, s.min_events):
                assert refused.get(seller, 0) == sent.get(seller, 0)
        previous = {x: n for x, n in sent.items() if n}


def test_a_draining_backlog_refuses_nobody_not_even_its_biggest_seller(caplog):
    """After a worker (or broker, or deploy) outage the workers catch up on a backlog of 1M events at 20k/s
    while the marketplace sends as usual, one seller being 80 % of it: the lag is far over the high mark, but
    it shrinks, nobody's sending outruns the workers, and nobody is refused, nor is the seller when alone.
    Once a flood makes the lag grow again over the high mark, it is refused as before."""
    caplog.set_level(logging.WARNING, "livemetrics.gateway")
    feed = Feed()
    s = shedder(feed)
    usual = {"big": 4000, "s1": 250, "s2": 250, "s3": 250, "s4": 250}  # big: 80 %, 16 x the others' mean
    window(s, usual, 0.0)
    lag, t = 1_000_000, 1.0
    while lag > LOW:
        feed.set(t, lag, drain=20_000.0, growth=-15_000.0)
        assert s.heavy == {"big"} or t == 1.0
        assert window(s, usual if t < 20 else {"big": 4000}, t) == dict.fromkeys(usual if t < 20 else ["big"], 0)
        lag, t = lag - 15_000, t + 1.0
    assert not caplog.records  # no "refusing" line either
    feed.set(t, HIGH + 5000, drain=20_000.0, growth=3000.0)
    window(s, {"flood": 5000, "small": 50}, t)
    feed.set(t + 1, HIGH + 8000, drain=20_000.0, growth=3000.0)
    assert window(s, {"flood": 5000, "small": 50}, t + 1)["flood"]
    assert "falling further behind (+3000 events/s)" in caplog.records[-1].getMessage()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(sends, st.integers(0, 10**7), st.booleans(), st.floats(-1e6, 0.0)), min_size=1, max_size=8))
def test_a_lag_that_does_not_grow_refuses_nobody(windows):
    """Whatever the lag and the sends, readings whose lag does not grow (draining, or growth unknown) never
    start refusals."""
    feed = Feed()
    s = shedder(feed)
    for i, (sent, lag, moving, growth) in enumerate(windows):
        feed.set(float(i), lag, progressed_at=float(i) if moving else -100.0, growth=growth)
        assert not any(window(s, sent, float(i)).values())


class ScriptedProbe(LagProbe):
    """The probe's arithmetic on given (lag, committed) reads, None for a failed one (no broker)."""

    def __init__(self, reads: list[tuple[int, int] | None]):
        super().__init__(Settings())
        self.reads = iter(reads)

    def read(self, timeout: float = 5.0) -> tuple[int, int] | None:
        return next(self.reads)


def growths_of(reads: list[tuple[int, int] | None], every: float = 2.0) -> list[float | None]:
    probe = ScriptedProbe(reads)
    out: list[float | None] = []
    for i in range(len(reads)):
        r = probe.step(now=100.0 + every * i)
        out.append(None if r is None else r.growth_per_s)
    return out


def test_the_probe_measures_growth_only_while_the_commits_move():
    """Every 2 s: a flood (the lag +40k a read while the commits move +20k) grows; a stop (commits still)
    has no growth; the first read after it (the stop's growth and the worker's start) only starts the
    measure; the catch-up that follows shrinks; a failed read starts the measure again."""
    reads: list[tuple[int, int] | None] = [(10_000, 0)]
    reads += [(10_000 + 40_000 * i, 20_000 * i) for i in range(1, 5)]  # flood: +20k/s net
    reads += [(170_000 + 2000 * i, 80_000) for i in range(1, 4)]  # the worker stopped, 1k/s arriving
    reads += [(175_000, 81_000), (137_000, 121_000), (99_000, 161_000), (61_000, 201_000)]  # back, 20k/s
    reads += [None, (55_000, 209_000), (17_000, 249_000)]
    g = growths_of(reads)
    assert g[0] == 0.0  # a first read: nothing to compare with
    assert g[1] == 0.0 and g[2:5] == [20_000.0] * 3  # the first interval is not known to be moving
    assert g[5] == 20_000.0  # no commit for 2 s: within the worker's usual gaps, the last measure stands
    assert g[6:8] == [0.0] * 2  # stopped: no growth measured, not the pause's
    assert g[8] == 0.0  # the first read after the stop
    assert g[9] == -19_000.0 and g[10] == -19_000.0 and g[11] == -19_000.0
    assert g[12] is None and g[13] == 0.0 and g[14] == -19_000.0


def test_the_growth_is_measured_over_a_few_seconds_of_reads():
    """Reads more often than the worker commits (every 0.5 s, commits every 1 s): the growth is measured
    between the reads at which the commits moved, over the last GROWTH_SPAN_S (and at least GROWTH_MIN_S),
    so the reads between two commits (what came since, not folded yet) do not look like a growing lag."""
    reads = []
    committed, lag = 0, 50_000
    for i in range(30):
        if i % 2 == 0:
            committed += 20_000  # a commit every second: 20k folded
            lag -= 20_000
        lag += 500  # 1k/s arriving
        reads.append((lag, committed))
    g = growths_of(reads, every=0.5)
    assert g[:6] == [0.0] * 6  # the first read, then under GROWTH_MIN_S of commit points: not measured yet
    assert all(x is not None and x < 0 for x in g[6:]), g
    assert GROWTH_SPAN_S >= 4 * 1.0 and GROWTH_MIN_S > 1.0  # several of the worker's 1-s commits


def test_a_deploy_pause_then_catching_up_is_not_growth():
    """The worker commits every second (reads every 2 s), a deploy stops its commits for 10 s (the lag
    +50k), then it folds the backlog: the pause's interval is not measured, the catch-up shrinks."""
    reads = [(20_000, 20_000 * i) for i in range(6)]  # steady: 10k/s in, 10k/s folded
    reads += [(20_000 + 20_000 * i, 100_000) for i in range(1, 6)]  # 10 s without a commit
    reads += [(110_000, 110_000), (80_000, 160_000), (50_000, 210_000), (20_000, 260_000)]  # back: 25k/s
    g = growths_of(reads)
    assert all(x is not None and x <= 0 for x in g), g
    assert g[-2:] == [-15_000.0, -15_000.0]


def test_a_worker_committing_in_bursts_grows_when_each_burst_leaves_more():
    """An overloaded worker commits only every ~10 s (its batches take that long): each commit point comes
    after a pause. When the lag after each of two bursts is higher than after the one before, it grows; when
    each burst folds more than came since (a backlog draining), it does not."""

    def bursts(lags: list[int]) -> list[float | None]:
        reads: list[tuple[int, int] | None] = []
        for i, lag in enumerate(lags):
            reads.append((lag, 1000 * (i + 1)))  # a commit point
            reads += [(lag + 5000 * k, 1000 * (i + 1)) for k in range(1, 5)]  # 8 s without a commit
        return growths_of(reads)

    growing = bursts([100_000, 120_000, 140_000, 160_000])
    assert growing[:11] == [0.0] * 11  # the first read, then a base and one burst: not known yet
    assert growing[15] == 2000.0 and growing[16] == 2000.0  # +40k over the last 3 commit points, 20 s
    assert growing[17:] == [0.0] * 3  # a pause again: the last measure only until it
    draining = bursts([300_000, 250_000, 200_000, 150_000])
    assert all(x is not None and x <= 0 for x in draining), draining
    # A stop (gateway_overload_stalled_s, 15 s) between two commits starts the chain again from the next one.
    stop = [(100_000, 1000)] + [(100_000 + 2500 * k, 1000) for k in range(1, 9)]  # 18 s without a commit
    stop += [(120_000, 2000)] + [(120_000 + 5000 * k, 2000) for k in range(1, 5)]
    stop += [(140_000, 3000)] + [(140_000 + 5000 * k, 3000) for k in range(1, 5)] + [(160_000, 4000)]
    g = growths_of(stop)
    assert g[:-1] == [0.0] * (len(stop) - 1) and g[-1] == 2000.0  # the chain: 120k, 140k, 160k
