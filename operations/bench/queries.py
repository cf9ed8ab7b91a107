"""``livemetrics bench queries``: p50/p95 of every report for a seller with 10 M events among 20 M, next to
the same hourly question answered by scanning the raw events (the ceiling the rollups must beat).

The history is generated as columns (numpy) and inserted as Arrow, through the materialized views, in
chunks; not through Kafka (that is ``bench sink``). Then the session fold catches up (as the sink's
process does in the background), and every report is measured at these fold states, each figure labelled
with its ``state``:

- ``history_tail``: the seller's last UNFOLDED history events, inserted after the fold (about what the
  seller's 10 M events in 30 days leave in the fold's lag of ``session_fold_grace_s`` +
  ``session_fold_interval_s``), which the session reports add live;
- ``late_spread`` (adversarial): LATE_TAIL more, all of new sessions whose events are spread over the 30
  days, so every hour of the hourly rollup is out of date;
- ``late_old_sessions`` (adversarial): OLD_TAIL more, all of sessions folded long ago (each needs its folded
  state looked up);
- ``recent``, what a running system has between folds (issue #19: ~2,000 events/s): after everything above
  is folded, RECENT_STEP events of the last seconds of a seller sending RECENT_RATE events/s (sessions of
  EVENTS_PER_SESSION events a minute apart, whose earlier events were folded), plus RECENT_LATE late events
  of sessions folded earlier in the last day; measured at one and at RECENT_STEPS such steps unfolded;
- ``recent_arriving``: the last ``recent`` state while the seller's events keep arriving at RATE events/s
  through the sink's insert path (operations/bench/queries_arriving.py), as on a running system between
  folds: the rows past the seller's fill of the shared live part grow until a report replaces it. The
  rate the inserting thread kept is emitted as ``arrived_events_per_s``.

#19's target is every report at any fold state. The raw scan (the ceiling) is measured after each state's
reports, so that each block has a ceiling of its own minutes (the load of this 2-core machine moves within
a run).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from livemetrics.settings import Settings
from operations.bench import emit
from operations.bench.queries_arriving import RATE, Arrivals

SELLER = "seller-main"
DAYS = 30
UNFOLDED = 350  # 90 s of this seller's traffic (10 M events in 30 days)
LATE_TAIL = 100_000
OLD_TAIL = 100_000  # 10,000 folded sessions, 10 more events each
EVENTS_PER_SESSION = 10
TYPES = ("page_view", "checkout_started", "payment_started", "payment_succeeded", "payment_failed")
TYPE_P = (0.82, 0.07, 0.04, 0.04, 0.03)
PAGES = ("home", "category", "offer", "product", "cart", "other")
PAGE_P = (0.2, 0.35, 0.25, 0.1, 0.05, 0.05)
# The recent state: a seller sending RECENT_RATE events/s, RECENT_STEP of them unfolded per step (50 s: about
# what the fold's 30-s interval and 60-s grace leave), plus RECENT_LATE late events a step (1 %: events of
# sessions folded earlier in the last day, within max_clock_skew_s)
RECENT_RATE = 2_000
RECENT_STEP = 100_000
RECENT_LATE = 1_000
RECENT_STEPS = 2
RECENT_SESSIONS = 2 * 10**9  # the recent traffic's session numbers start here (the history's are below 2e8)
LATE_WITHIN_MS = 86_400_000


def _dict(idx: np.ndarray, values) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)), pa.array(list(values), pa.string()))


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    hexd = np.frombuffer(b"0123456789abcdef", dtype="S1")
    b = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    h = np.empty((n, 32), dtype="S1")
    h[:, 0::2], h[:, 1::2] = hexd[b >> 4], hexd[b & 15]
    dash = np.full((n, 1), b"-", dtype="S1")
    s = np.hstack([h[:, :8], dash, h[:, 8:12], dash, h[:, 12:16], dash, h[:, 16:20], dash, h[:, 20:]])
    return pa.array(np.ascontiguousarray(s).view("S36").ravel()).cast(pa.string())


def chunk(rng: np.random.Generator, first_event: int, n: int, seller: str | None, end_ms: int, offset: int) -> pa.Table:
    """``n`` events; sessions of EVENTS_PER_SESSION events a minute apart; one seller or 99 others."""
    idx = np.arange(first_event, first_event + n)
    sess = idx // EVENTS_PER_SESSION
    ts = session_start(sess, end_ms) + (idx % EVENTS_PER_SESSION) * 60_000
    return events(rng, idx + offset, sess, ts, seller)


def session_start(sess: np.ndarray, end_ms: int) -> np.ndarray:
    """The history's sessions start spread over the DAYS before ``end_ms`` (by a hash of the session)."""
    return end_ms - DAYS * 86_400_000 + (sess * 2_654_435_761) % (DAYS * 86_400_000)


def events(
    rng: np.random.Generator, offsets: np.ndarray, sess: np.ndarray, ts: np.ndarray, seller: str | None
) -> pa.Table:
    """One event per (session, ``ts`` in epoch ms, Kafka offset), of random type, page and items; one
    seller's or, with ``seller`` None, 99 others' (by session)."""
    from clickhouse.columns import MONEY_ARROW
    from operations.bench.events_arrow import EVENT_SCHEMA

    n = len(sess)
    sellers = [seller] if seller else [f"seller-{i:03d}" for i in range(99)]
    t = rng.choice(len(TYPES), n, p=TYPE_P)
    pv = t == 0
    page = np.where(pv, rng.choice(len(PAGES), n, p=PAGE_P) + 1, 0)
    cat = np.where(page == 2, rng.integers(1, 51, n), 0)
    offer = np.where(page == 3, rng.integers(1, 301, n), 0)
    pay = t >= 2
    method = np.where(pay, rng.integers(1, 5, n), 0)
    err = np.where(t == 4, rng.integers(1, 9, n), 0)
    cols = {
        "event_id": _uuids(rng, n),
        "type": _dict(t, TYPES),
        "seller_id": _dict(np.zeros(n, np.int32) if seller else sess % 99, sellers),
        "session_id": pa.array(sess + 10_000_000).cast(pa.string()),
        "ts": pa.array(ts.astype(np.int64)).cast(pa.timestamp("ms", tz="UTC")),
        "received_at": pa.array(ts.astype(np.int64)).cast(pa.timestamp("ms", tz="UTC")),
        "page_type": _dict(page, ("",) + PAGES),
        "category": _dict(cat, [""] + [f"cat-{i}" for i in range(1, 51)]),
        "offer_id": _dict(offer, [""] + [f"offer-{i}" for i in range(1, 301)]),
        # money is Decimal(18, 4): Arrow's cast rounds each float to its cents (ClickHouse's would truncate)
        "total": pa.array(np.where(t >= 1, rng.uniform(5, 300, n).round(2), 0.0)).cast(MONEY_ARROW),
        "currency": _dict(np.where(t >= 1, rng.integers(1, 3, n), 0), ("", "EUR", "USD")),
        "payment_method": _dict(method, ("", "card", "paypal", "wallet", "bank_transfer")),
        "error_code": _dict(err, [""] + [f"err_{i}" for i in range(1, 9)]),
        "error_message": _dict(err, [""] + [f"Error number {i}" for i in range(1, 9)]),
        "customer_email": _dict((t >= 1).astype(np.int32), ("", "someone@example.com")),
        "browser": _dict(np.zeros(n, np.int32), ("Chrome",)),
        "is_bot": pa.array(np.zeros(n, bool)),
        "backfill": pa.array(np.zeros(n, bool)),
        "kafka_topic": _dict(np.zeros(n, np.int32), ("bench",)),
        "kafka_partition": pa.array(np.zeros(n, np.uint16)),
        "kafka_offset": pa.array(offsets.astype(np.uint64)),
    }
    empty = _dict(np.zeros(n, np.int32), ("",))
    return pa.Table.from_arrays([cols.get(f.name, empty) for f in EVENT_SCHEMA], names=EVENT_SCHEMA.names)


def load(s: Settings, total: int, mine: int, chunk_rows: int = 1_000_000, held_back: int = 0, end_ms: int = 0):
    """``total`` events, ``mine`` of them the seller's; returns ``more(n)``, which inserts the next ``n``
    of the seller's events (new sessions, continuing its history), starting with the last ``held_back``,
    or with ``first`` given, ``n`` more events of the sessions of its events from ``first`` on. The
    sessions start in the DAYS before ``end_ms`` (default: now)."""
    rng = np.random.default_rng(42)
    end_ms = end_ms or int(time.time() * 1000)

    def insert(first: int, n: int, seller: str | None, offset: int) -> None:
        insert_events(s, chunk(rng, first, n, seller, end_ms, offset))

    for done in range(0, mine - held_back, chunk_rows):
        insert(done, min(chunk_rows, mine - held_back - done), SELLER, done)
    for done in range(mine, total, chunk_rows):  # other sellers' sessions never collide with ours
        insert(done - mine + 10**9, min(chunk_rows, total - done), None, done)
    nxt, extra = mine - held_back, 0

    def more(n: int, first: int | None = None) -> None:
        nonlocal nxt, extra
        if first is not None:  # the same sessions and minutes again, new event ids and offsets
            insert(first, n, SELLER, 2 * total + extra)
            extra += n
            return
        insert(nxt, n, SELLER, total + nxt)
        nxt += n

    return more


def insert_events(s: Settings, table: pa.Table) -> None:
    from clickhouse.client import INSERT_SETTINGS, get_client

    get_client(s).insert_arrow(
        f"{s.clickhouse_database}.events", table, settings={**INSERT_SETTINGS, "insert_deduplicate": 0}
    )


def steady(from_ms: int, to_ms: int, origin_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """The sessions and times (epoch ms) of the events in [``from_ms``, ``to_ms``) of a seller sending
    RECENT_RATE events/s since ``origin_ms``: a session starts every EVENTS_PER_SESSION / RECENT_RATE s and
    sends EVENTS_PER_SESSION events a minute apart (the history's sessions), so from EVENTS_PER_SESSION
    minutes after the origin on any window of the traffic holds RECENT_RATE events a second, most of them
    of sessions that began before it."""
    gap = 1000 * EVENTS_PER_SESSION // RECENT_RATE
    sess, ts = [], []
    for i in range(EVENTS_PER_SESSION):
        first = origin_ms + i * 60_000  # event i of session j is at first + j * gap
        j = np.arange(max(0, -(-(from_ms - first) // gap)), max(0, -(-(to_ms - first) // gap)), dtype=np.int64)
        sess.append(j + RECENT_SESSIONS)
        ts.append(first + j * gap)
    return np.concatenate(sess), np.concatenate(ts)


def late(rng: np.random.Generator, n: int, end_ms: int, now_ms: int, sessions: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` late events (sessions, times): one each of ``n`` of the first ``sessions`` history sessions
    (``chunk``'s, ending at ``end_ms``) that started in the LATE_WITHIN_MS before ``now_ms`` (live events are
    at most ``max_clock_skew_s``, a day, off), at one of the session's minutes again (a new event id)."""
    sess = np.arange(sessions, dtype=np.int64)
    start = session_start(sess, end_ms)
    sess = sess[(start >= now_ms - LATE_WITHIN_MS) & (start < now_ms - 3_600_000)]
    sess = rng.choice(sess, n, replace=False)
    return sess, session_start(sess, end_ms) + rng.integers(0, EVENTS_PER_SESSION, n) * 60_000


def timings(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm-up
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.95))]


def run(args) -> int:
    from clickhouse import query
    from clickhouse.client import close_all, get_client
    from clickhouse.migrate import migrate

    total = 20_000_000
    with tempfile.TemporaryDirectory(prefix="lm-bench-queries-") as tmp:
        s = Settings(
            data_dir=Path(tmp),
            clickhouse_dsn=args.clickhouse or f"chdb://{tmp}/chdb",
            clickhouse_database=f"bench_q_{uuid.uuid4().hex[:8]}",
        )
        migrate(s)
        t0 = time.perf_counter()
        end_ms = int(time.time() * 1000)
        more = load(s, total, total // 2, held_back=UNFOLDED, end_ms=end_ms)
        print(f"# loaded {total - UNFOLDED:,} events in {time.perf_counter() - t0:.0f} s", flush=True)
        fold_all(s)
        merge_history(s)
        states_in_memory(s)
        more(UNFOLDED)
        settle(s)
        repeat = max(20, int(args.duration * 4))
        labels = {"events": total, "seller_events": total // 2}
        raw = (
            f"SELECT toStartOfHour(ts, 'Europe/Berlin') AS h, count(), uniq(session_id) FROM {s.clickhouse_database}.events "
            f"WHERE seller_id = '{SELLER}' AND type = 'page_view' GROUP BY h FORMAT Null"
        )

        def state(**state_labels) -> None:
            end = datetime.now(UTC)
            start = end - timedelta(days=DAYS)
            for name in query.REPORTS:
                measure(s, name, start, end, repeat, **labels, **state_labels)
            p50, p95 = timings(lambda: get_client(s).command(raw), 5)
            emit("queries", "report_p50_ms", p50, "ms", report="raw_scan_hourly", **labels, **state_labels)
            emit("queries", "report_p95_ms", p95, "ms", report="raw_scan_hourly", **labels, **state_labels)

        state(unfolded_events=UNFOLDED, state="history_tail")
        more(LATE_TAIL)
        settle(s)
        state(unfolded_events=UNFOLDED + LATE_TAIL, state="late_spread")
        more(OLD_TAIL, first=total // 4)  # sessions from the middle of the folded history
        settle(s)
        state(
            unfolded_events=UNFOLDED + LATE_TAIL + OLD_TAIL,
            unfolded_old_sessions=OLD_TAIL // 10,
            state="late_old_sessions",
        )
        # the recent state: the last RECENT_STEPS windows of RECENT_RATE events/s and a few late events, after a
        # fold of everything before them (the seller's sessions of the 10 minutes before are folded)
        rng = np.random.default_rng(7)
        now_ms = int(time.time() * 1000)
        window = RECENT_STEP * 1000 // RECENT_RATE
        first = now_ms - RECENT_STEPS * window
        origin = first - EVENTS_PER_SESSION * 60_000
        sess, ts = steady(origin, first, origin)
        offset = 3 * total
        insert_events(s, events(rng, np.arange(len(sess)) + offset, sess, ts, SELLER))
        offset += len(sess)
        fold_all(s, what=f"the states above and {len(sess):,} events of the recent traffic's sessions")
        refold_traffic(s)
        settle(s)
        for step in range(1, RECENT_STEPS + 1):
            sess, ts = steady(first + (step - 1) * window, first + step * window, origin)
            late_sess, late_ts = late(rng, RECENT_LATE, end_ms, now_ms, total // 2 // EVENTS_PER_SESSION)
            sess, ts = np.concatenate([sess, late_sess]), np.concatenate([ts, late_ts])
            insert_events(s, events(rng, np.arange(len(sess)) + offset, sess, ts, SELLER))
            offset += len(sess)
            settle(s)
            state(
                unfolded_events=step * (RECENT_STEP + RECENT_LATE),
                unfolded_late_events=step * RECENT_LATE,
                state="recent",
            )
        # the same while the seller's events keep arriving (operations/bench/queries_arriving.py): the rows past the
        # fill that a running system's reports add, which the states above never have
        with Arrivals(s, SELLER, origin, offset) as arriving:
            state(
                unfolded_events=RECENT_STEPS * (RECENT_STEP + RECENT_LATE),
                arriving_events_per_s=RATE,
                state="recent_arriving",
            )
        emit("queries", "arrived_events_per_s", arriving.events_per_s, "events/s", state="recent_arriving")
        # close chdb before the directory goes: background merges still writing made rmtree fail
        close_all()
    return 0


def fold_all(s: Settings, what: str = "the history") -> None:
    """What the sink's fold thread would have done by now: fold every row inserted so far (nothing is
    being inserted, so once the 10 s insert bucket of the last insert is over, all of it), and the hourly
    rollup's closed hours (the traffic fold)."""
    from clickhouse import session_fold

    time.sleep(10 - time.time() % 10 + 0.5)
    t0 = time.perf_counter()
    session_fold.fold(s, until=session_fold.fold_until(s, idle=True))
    print(f"# folded {what} in {time.perf_counter() - t0:.0f} s", flush=True)


def refold_traffic(s: Settings) -> None:
    """The traffic fold's full round (at a process's start and daily): every hour out of date that no live
    event can reach any more is refolded. A fold round of the same process looks at the last 3 days only, so
    without it the late_spread state's events would leave every hour of the recent state out of date, which
    a running system (live events at most ``max_clock_skew_s`` late) does not have."""
    from clickhouse import traffic_fold

    t0 = time.perf_counter()
    n = traffic_fold.fold_hours(s, since=0)
    print(f"# refolded {n:,} seller-hours of the hourly rollup in {time.perf_counter() - t0:.0f} s", flush=True)


# The tables a report reads that the history's load leaves with many rows of one key in several parts
HISTORY_TABLES = (
    "rollup_traffic_hourly",
    "rollup_pages_hourly",
    "rollup_pages_daily",
    "rollup_payments_hourly",
    "session_sums",
)


def merge_history(s: Settings) -> None:
    """Merge the history's parts of HISTORY_TABLES into one each, as a system that received it over 30 days
    has long done: the load inserts it in chunks of a million events that each span all 30 days, so every
    part holds most of the hours x items (8 parts of the page rollup: the offers report read 466 k rows
    for 216 k distinct ones; BENCHMARKS.md, 2026-12-06, sixth round), whereas live traffic arrives in hour
    order and merged parts hardly overlap. The events the reports are measured with come after it."""
    from clickhouse.client import get_client

    t0 = time.perf_counter()
    for table in HISTORY_TABLES:
        get_client(s).command(f"OPTIMIZE TABLE {s.clickhouse_database}.{table} FINAL")
    print(f"# merged the history's parts in {time.perf_counter() - t0:.0f} s", flush=True)


def states_in_memory(s: Settings) -> None:
    """What the folded states in memory (session_folded_join, migration 014) cost: its memory as the
    history's fold left it and after a rebuild (what the fold thread does at start and daily), and the
    rebuild's time."""
    from clickhouse import query, session_fold
    from clickhouse.client import get_client

    if not s.session_states_in_memory:
        return
    size = (
        "SELECT total_rows, total_bytes FROM system.tables WHERE database = {db:String} "
        "AND name = 'session_folded_join'"
    )
    ((rows, folded_bytes),) = get_client(s).query(size, parameters={"db": s.clickhouse_database}).result_rows
    t0 = time.perf_counter()
    session_fold.rebuild_states_join(s, query.folded_to(s))
    took = time.perf_counter() - t0
    ((rows, rebuilt_bytes),) = get_client(s).query(size, parameters={"db": s.clickhouse_database}).result_rows
    print(
        f"# session_folded_join: {rows:,} rows, {folded_bytes / 1e6:.0f} MB after the history's fold, "
        f"{rebuilt_bytes / 1e6:.0f} MB ({rebuilt_bytes / max(rows, 1):.0f} B a row) after a rebuild in {took:.1f} s",
        flush=True,
    )


def settle(s: Settings, limit_s: float = 600) -> None:
    """Wait until no background merge of the database is running, so that a measured block does not
    overlap merges of the parts just inserted (a system that received its history over 30 days has long
    merged it). In the runs of 2026-12-05 (BENCHMARKS.md) the waits were 0-2 s."""
    from clickhouse.client import get_client

    t0 = time.perf_counter()
    sql = f"SELECT count() FROM system.merges WHERE database = '{s.clickhouse_database}'"
    while get_client(s).query(sql).result_rows[0][0] and time.perf_counter() - t0 < limit_s:
        time.sleep(0.5)
    print(f"# waited {time.perf_counter() - t0:.0f} s for background merges", flush=True)


# The session reports whose live part is shared (clickhouse/session_live_cache.py), and how many times each is
# also measured without a fill (the first of a dashboard's three after a fold step, or after a restart)
SHARED_LIVE = ("categories", "offers", "funnel")
COLD_REPEAT = 3


def measure(s: Settings, name: str, start: datetime, end: datetime, repeat: int, **labels) -> None:
    """p50/p95 of ``repeat`` runs after a warm-up (the session reports: with the fill the warm-up made, as the
    2nd and 3rd of a dashboard's three and every later one until the watermark moves), and for the session
    reports ``report_cold_ms``, the median of COLD_REPEAT runs that each make the fill first (the fills and
    the process's remembered starts dropped before each)."""
    from clickhouse import query, session_reports
    from clickhouse.client import get_client

    p50, p95 = timings(lambda: query.report(s, name, SELLER, start, end, "Europe/Berlin"), repeat)
    emit("queries", "report_p50_ms", p50, "ms", report=name, **labels)
    emit("queries", "report_p95_ms", p95, "ms", report=name, **labels)
    if name not in SHARED_LIVE:
        return
    ms = []
    for _ in range(COLD_REPEAT):
        for table in ("session_live_fills", "session_live_states", "session_live_deltas"):
            get_client(s).command(f"TRUNCATE TABLE {s.clickhouse_database}.{table}")
        session_reports._seen.clear()
        t0 = time.perf_counter()
        query.report(s, name, SELLER, start, end, "Europe/Berlin")
        ms.append((time.perf_counter() - t0) * 1000)
    emit("queries", "report_cold_ms", sorted(ms)[len(ms) // 2], "ms", report=name, **labels)
