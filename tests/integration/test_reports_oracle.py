"""Every report against an oracle computed in Python from the same generated events: several sellers,
several days around a DST change, several time zones. Events go through Kafka and the real sink into
the real ClickHouse engine; reports are read through the API.

The session reports (categories, offers, funnel) add the folded session_sums and the changes of the
rows inserted since the fold's watermark (clickhouse/session_fold.py), so they are checked with part of
the history folded and part not, and through every fold state: nothing folded, half, all, late events
for sessions already folded, a fold step interrupted between its two inserts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from confluent_kafka import Producer

from api.main import create_api
from clickhouse import query, session_fold, session_live_cache, session_reports
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from livemetrics.contract import TOPIC_FOR_TYPE, encode
from livemetrics.kafka_config import producer_config
from livemetrics.keys import KeyRegistry
from tests.support import oracle
from tests.support.servers import ThreadServer, wait_until
from tests.support.stack import module_settings, new_seller

pytestmark = pytest.mark.integration
SELLERS = ("s-alpha", "s-beta", "s-gamma")
# merges stopped: partial rows and partial states really have to be merged by the queries
UNMERGED = ("session_updates", "session_sums", "rollup_traffic_hourly", "rollup_pages_hourly", "rollup_payments_hourly")


def produce(settings, events) -> None:
    p = Producer(producer_config(settings))
    for e in events:
        p.produce(settings.topic(TOPIC_FOR_TYPE[e.type]), key=e.session_id.encode(), value=encode(e))
        p.poll(0)
    assert p.flush(30) == 0


def deliver(settings, events, stored: int) -> int:
    """Produce ``events`` and wait until the running sink has stored them; returns the new total."""
    db = settings.clickhouse_database
    produce(settings, events)
    total = stored + len(events)
    wait_until(
        lambda: get_client(settings).query(f"SELECT count() FROM {db}.events").result_rows[0][0] == total,
        60,
        interval=0.2,
        what="all events in ClickHouse",
    )
    return total


def next_bucket(settings) -> int:
    """Wait for the next 10 s insert bucket; returns its start: rows inserted so far are labelled before it,
    rows inserted from now on at or after it."""
    ((now_ms,),) = get_client(settings).query("SELECT toUnixTimestamp64Milli(now64(3))").result_rows
    boundary = now_ms // 10_000 * 10 + 10
    time.sleep(boundary - now_ms / 1000 + 0.2)
    return boundary


@contextmanager
def history_of(settings, events, later: float = 0.3):
    """``events`` stored in two deliveries separated by an insert-bucket boundary (rows of either side of a
    fold watermark; no fold yet), then an API on them. Yields a dict for ``fetch``."""
    tokens = {s: new_seller(settings, s)[1] for s in SELLERS}
    migrate(settings)
    db = settings.clickhouse_database
    for table in UNMERGED:
        get_client(settings).command(f"SYSTEM STOP MERGES {db}.{table}")
    first, second = oracle.split(events, seed=11, later=later)
    sink = EventSink(settings).start()
    registry = KeyRegistry(settings).start()
    api = ThreadServer(create_api(settings, registry, run_sink=False)).start()
    try:
        stored = deliver(settings, first, 0)
        boundary = next_bucket(settings)
        stored = deliver(settings, second, stored)
        rows, sessions = (
            get_client(settings)
            .query(f"SELECT count(), uniqExact(seller_id, session) FROM {db}.session_updates")
            .result_rows[0]
        )
        assert rows > sessions * 1.2  # many sessions really are in several partial rows
        wait_until(lambda: all(registry.record(t.split("_")[2]) for t in tokens.values()), 10, what="tokens loaded")
        yield {
            "settings": settings,
            "events": list(events),
            "api": api,
            "tokens": tokens,
            "boundary": boundary,
            "stored": stored,
        }
    finally:
        api.stop()
        registry.stop()
        sink.stop()


@pytest.fixture(scope="module")
def history(kafka, clickhouse_dsn, tmp_path_factory):
    # small batches: a session's events land in several inserts, so the rollups' partial states and the
    # session rows really have to be merged; no background fold, the test decides what is folded
    settings = module_settings(
        kafka, clickhouse_dsn, tmp_path_factory.mktemp("oracle"), sink_batch_rows=200, session_fold_interval_s=0
    )
    now = datetime.now(UTC)
    start = oracle.dst_transition_before(now) - timedelta(days=2)
    events = oracle.generate(7, SELLERS, start, days=4, sessions_per_seller=250)
    with history_of(settings, events) as h:
        # the first delivery folded, the second not: the reports add folded sums and live changes
        assert session_fold.fold(settings, until=h["boundary"]) >= 1
        assert query.folded_to(settings) == h["boundary"]
        yield {**h, "start": start}


def fetch(h, seller, report, start, end, tz):
    r = httpx.get(
        f"{h['api'].url}/v1/sellers/{seller}/reports/{report}",
        params={"from": start.isoformat(), "to": end.isoformat(), "tz": tz},
        headers={"Authorization": f"Bearer {h['tokens'][seller]}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def fetch_all(h, asked):
    """``fetch`` for each (seller, report, start, end, tz), a few at a time: the API serves reports from a
    thread pool and the engine runs queries side by side, so the walk through the fold states takes about
    half the wall time it took one by one."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda a: fetch(h, *a), asked))


def pick(rows, keys):
    return [{k: r[k] for k in keys} for r in rows]


def assert_reports_match_oracle(h, start, end, tz):
    events = h["events"]
    wants = {seller: oracle.reports(events, seller, start, end, tz) for seller in SELLERS}
    asked = [(seller, name, start, end, tz) for seller in SELLERS for name in wants[seller]]
    answers = dict(zip(asked, fetch_all(h, asked)))
    for seller in SELLERS:
        want = wants[seller]
        got = {name: answers[(seller, name, start, end, tz)] for name in want}
        assert got["hourly"]["rows"] == want["hourly"]["rows"]
        assert len(want["hourly"]["rows"]) > 24  # the data really spans the week grid
        for name in ("categories", "offers"):
            assert got[name]["rows"] == want[name]["rows"], name
        assert pick(got["funnel"]["rows"], ("step", "sessions", "abandoned")) == want["funnel"]["rows"]
        visit = want["funnel"]["rows"][0]["sessions"]
        assert got["funnel"]["rows"][2]["conversion_from_start"] == round(
            want["funnel"]["rows"][2]["sessions"] / visit, 4
        )
        methods = got["payment-methods"]["rows"]
        assert pick(methods, ("method", "started", "succeeded", "failed")) == pick(
            want["payment-methods"]["rows"], ("method", "started", "succeeded", "failed")
        )
        for g, w in zip(methods, want["payment-methods"]["rows"]):
            assert g["revenue"] == w["revenue"]  # exact decimal strings: sums of money are exact
            assert g["success_rate"] == round(w["succeeded"] / (w["succeeded"] + w["failed"]), 4)
        assert got["error-trends"]["rows"] == want["error-trends"]["rows"]
        assert pick(got["error-trends"]["top_causes"], ("error_code", "failures")) == want["error-trends"]["top_causes"]


def assert_session_reports_match_by_window(h, start, tz, every_seller=True):
    """categories, offers and funnel over consecutive 12 h windows: sessions must be counted at the
    hour they started, not merely somewhere in a long range. Every seller in every window, or (to keep
    the suite's walk through the fold states short) one seller a window in turn: each window and each
    seller is still checked in every state."""
    events = h["events"]
    windows = [start + timedelta(hours=5 + 12 * i, minutes=20) for i in range(8)]
    sellers = {i: SELLERS if every_seller else SELLERS[i % len(SELLERS) : i % len(SELLERS) + 1] for i in range(8)}
    asked = [
        (seller, name, begin, begin + timedelta(hours=12), tz)
        for i, begin in enumerate(windows)
        for seller in sellers[i]
        for name in ("categories", "offers", "funnel")
    ]
    answers = dict(zip(asked, fetch_all(h, asked)))
    for i, begin in enumerate(windows):
        end = begin + timedelta(hours=12)
        for seller in sellers[i]:
            want = oracle.reports(events, seller, begin, end, tz)
            for name in ("categories", "offers"):
                assert answers[(seller, name, begin, end, tz)]["rows"] == want[name]["rows"], (name, i)
            got = answers[(seller, "funnel", begin, end, tz)]["rows"]
            assert pick(got, ("step", "sessions", "abandoned")) == want["funnel"]["rows"], i


def in_memory(settings) -> bool:
    """A session report would read the folded states from session_folded_join now."""
    return session_reports._in_memory(settings, session_reports._start(settings, SELLERS[0]))


@contextmanager
def form(settings, states_in_memory: bool, few_live_rows: int, shared: bool = False):
    """The session reports' live part in one of its forms: the folded states looked up in session_folded_join,
    or (not in memory) from session_state by key (FEW_LIVE_ROWS high) or a pass over session_folded (0);
    ``shared``: from a fill of the shared live part (session_live_cache; in memory only) for any count."""
    mp = pytest.MonkeyPatch()
    mp.setattr(settings, "session_states_in_memory", states_in_memory)
    mp.setattr(session_reports, "FEW_LIVE_ROWS", few_live_rows)
    mp.setattr(session_live_cache, "CACHE_MIN_ROWS", 0 if shared else 10**9)
    try:
        yield
    finally:
        mp.undo()


def in_every_form_of(settings):
    def check(assertion) -> None:
        for states_in_memory, few, shared in (
            (True, 0, False),
            (False, 0, False),
            (False, 10**9, False),
            (True, 0, True),
        ):
            with form(settings, states_in_memory, few, shared):
                assertion()

    return check


def report_range(start):
    # a range that does not start on a whole hour, and spans the DST change
    begin = start + timedelta(hours=7, minutes=20)
    return begin, begin + timedelta(days=3, hours=2)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"])
def test_every_report_matches_the_oracle(history, tz):
    assert_reports_match_oracle(history, *report_range(history["start"]), tz)


# make test checks each 12 h window for one seller in turn in every state: 384 report requests instead
# of 864, the walk's CPU 115 -> 54 s; make test-long checks every seller in every window too
@pytest.mark.parametrize("every_seller", [False, pytest.param(True, marks=pytest.mark.long)], ids=["turns", "all"])
def test_reports_stay_exact_through_every_fold_state(kafka, clickhouse_dsn, tmp_path, monkeypatch, every_seller):
    settings = module_settings(kafka, clickhouse_dsn, tmp_path, sink_batch_rows=200, session_fold_interval_s=0)
    start = oracle.dst_transition_before(datetime.now(UTC)) - timedelta(days=2)
    events = oracle.generate(8, SELLERS, start, days=4, sessions_per_seller=120)
    begin, end = report_range(start)
    db = settings.clickhouse_database
    c = get_client(settings)

    def parts() -> int:
        return c.query(
            f"SELECT count() FROM system.parts WHERE database = '{db}' AND table = 'session_sums' AND active"
        ).result_rows[0][0]

    in_every_form = in_every_form_of(settings)
    with history_of(settings, events) as h:
        assert query.folded_to(settings) == 0
        assert_reports_match_oracle(h, begin, end, "Asia/Kolkata")  # nothing folded: all live
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)

        # a step's insert is one part even when the SELECT yields many blocks
        monkeypatch.setitem(session_fold._ONE_PART, "max_block_size", 16)
        before = parts()
        assert session_fold.fold_step(settings, until=h["boundary"])
        assert parts() == before + 1
        assert c.query(f"SELECT count() FROM {db}.session_sums").result_rows[0][0] > 16 * 4
        assert_reports_match_oracle(h, begin, end, "UTC")  # half folded
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)

        everything = next_bucket(settings)  # nothing is being inserted: all rows so far are before it
        assert session_fold.fold(settings, until=everything) == 1
        assert session_fold.fold(settings, until=everything) == 0  # nothing left
        assert_reports_match_oracle(h, begin, end, "Europe/Berlin")  # all folded
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)

        # sessions already folded get late events: their start hour moves, they view more, go further
        late = oracle.late_events(9, events, sessions=15)
        h["events"] += late
        stored = deliver(settings, late, h["stored"])
        assert stored == h["stored"] + len(late)
        assert_reports_match_oracle(h, begin, end, "America/New_York")  # late events live
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)
        assert in_memory(settings)  # the folded states in memory (session_folded_join) are used
        in_every_form(lambda: assert_session_reports_match_by_window(h, start, "UTC", every_seller))

        # a fold step interrupted after writing session_state: reports still exact, and the re-run too
        lo, hi = query.folded_to(settings), next_bucket(settings)
        session_fold.compute_changes(settings, lo, hi)
        session_fold.write_states(settings, lo, hi)
        assert_reports_match_oracle(h, begin, end, "UTC")
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)
        # and after writing session_folded, which the reports read: the rows of the step's sessions
        # are newer than the watermark, the reports take the states they started from
        session_fold.write_folded(settings, lo, hi)
        # (not in session_folded_join yet: its marker is still at the watermark, its entries as of it)
        assert in_memory(settings)
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)
        ((newer,),) = c.query(
            f"SELECT count() FROM {db}.session_folded WHERE version > toDateTime({lo}, 'UTC') AND had_before"
        ).result_rows
        assert newer > 0  # the late events' sessions, folded before
        assert_reports_match_oracle(h, begin, end, "Europe/Berlin")
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)
        # with the older rows merged away, only the step's rows (newer than the watermark) hold the
        # states as of it: their before_*, in both forms
        c.command(f"OPTIMIZE TABLE {db}.session_folded FINAL")
        ((older,),) = c.query(
            f"SELECT count() FROM {db}.session_folded WHERE version <= toDateTime({lo}, 'UTC') AND session IN "
            f"(SELECT session FROM {db}.session_folded WHERE version > toDateTime({lo}, 'UTC'))"
        ).result_rows
        assert older == 0
        in_every_form(lambda: assert_session_reports_match_by_window(h, start, "UTC", every_seller))
        # and after writing session_folded_join: the step's entries and its marker past the watermark
        session_fold.write_join(settings, lo, hi, session_fold.join_marker(settings)[1])
        assert session_fold.join_marker(settings)[0] == hi > query.folded_to(settings)
        assert in_memory(settings)
        assert_reports_match_oracle(h, begin, end, "America/New_York")
        in_every_form(lambda: assert_session_reports_match_by_window(h, start, "UTC", every_seller))
        assert session_fold.fold(settings, until=hi) == 1
        assert query.folded_to(settings) == hi
        assert_reports_match_oracle(h, begin, end, "Asia/Kolkata")  # late events folded
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)

        # a step retried after it committed is dropped (same token)
        session_fold.write_sums(settings, lo, hi)
        assert_reports_match_oracle(h, begin, end, "UTC")

        # steps folded without session_folded_join (LIVEMETRICS_SESSION_STATES_IN_MEMORY=false in the folding
        # process, then true again): the table is behind the watermark, the reports read session_folded, and
        # the next fold rebuilds it
        late = oracle.late_events(10, h["events"], sessions=15)
        h["events"] += late
        stored = deliver(settings, late, stored)
        held_to = session_fold.join_marker(settings)[0]
        monkeypatch.setattr(settings, "session_states_in_memory", False)
        assert session_fold.fold(settings, until=next_bucket(settings)) == 1
        assert session_fold.join_marker(settings) == (0, "")  # emptied (its memory freed)
        monkeypatch.setattr(settings, "session_states_in_memory", True)
        assert not in_memory(settings)
        assert_reports_match_oracle(h, begin, end, "Europe/Berlin")
        assert session_fold.fold(settings, until=query.folded_to(settings)) == 0  # nothing to fold: rebuilt
        assert session_fold.join_marker(settings)[0] == query.folded_to(settings) > held_to
        assert in_memory(settings)
        assert_reports_match_oracle(h, begin, end, "Asia/Kolkata")
        assert_session_reports_match_by_window(h, start, "UTC", every_seller)


def fills(settings, seller) -> list[tuple[int, int]]:
    """The seller's registered fills of the shared live part: (watermark, fill)."""
    return (
        get_client(settings)
        .query(
            f"SELECT watermark, fill FROM {settings.clickhouse_database}.session_live_fills "
            "WHERE seller_id = {seller:String} ORDER BY made, fill",
            parameters={"seller": seller},
        )
        .result_rows
    )


def test_the_shared_live_part_stays_exact(kafka, clickhouse_dsn, tmp_path, monkeypatch):
    """The dashboard's three session reports share one fill of the live part (session_live_cache), and with
    it stay exact: rows inserted after the fill (parts past its block number), a merge that puts the fill's
    rows in one part with newer ones (the report takes them again: idempotent), a fold step (a new watermark:
    a new fill), and a fill replaced once too many rows came after it."""
    settings = module_settings(kafka, clickhouse_dsn, tmp_path, sink_batch_rows=200, session_fold_interval_s=0)
    start = oracle.dst_transition_before(datetime.now(UTC)) - timedelta(days=2)
    events = oracle.generate(11, SELLERS, start, days=4, sessions_per_seller=120)
    begin, end = report_range(start)
    db = settings.clickhouse_database
    c = get_client(settings)
    monkeypatch.setattr(session_live_cache, "CACHE_MIN_ROWS", 0)  # the test's few sessions take the fill too
    monkeypatch.setattr(session_live_cache, "REFILL_ROWS", 10**9)
    # the test's steps take minutes on a loaded machine: its fills stay usable (and kept) throughout
    monkeypatch.setattr(session_live_cache, "FILL_MAX_AGE_S", 3600)
    monkeypatch.setattr(session_live_cache, "DROP_AFTER_S", 7200)
    with history_of(settings, events) as h:
        assert session_fold.fold(settings, until=h["boundary"]) >= 1
        lo = query.folded_to(settings)
        assert all(fills(settings, seller) == [] for seller in SELLERS)
        assert_reports_match_oracle(h, begin, end, "Europe/Berlin")  # three session reports a seller, at once
        made = {seller: fills(settings, seller) for seller in SELLERS}
        assert all(len(f) == 1 and f[0][0] == lo for f in made.values()), made  # one fill for the three

        # late events of folded sessions, and new sessions: parts past the fills' block numbers
        late = oracle.late_events(12, h["events"], sessions=15)
        h["events"] += late
        h["stored"] = deliver(settings, late, h["stored"])
        assert_reports_match_oracle(h, begin, end, "UTC")
        assert {seller: fills(settings, seller) for seller in SELLERS} == made  # no new fill: the rows added
        # one part of every row: the fills' rows are in a part past their block numbers too, read again
        c.command(f"SYSTEM START MERGES {db}.session_updates")  # (history_of stopped them)
        c.command(f"OPTIMIZE TABLE {db}.session_updates FINAL")
        c.command(f"SYSTEM STOP MERGES {db}.session_updates")
        sql = f"SELECT count() FROM system.parts WHERE database = '{db}' AND table = 'session_updates' AND active"
        assert c.query(sql).result_rows[0][0] == 1
        assert_reports_match_oracle(h, begin, end, "America/New_York")
        assert {seller: fills(settings, seller) for seller in SELLERS} == made

        # a fold step: the fills are of the old watermark; the reports make new ones
        assert session_fold.fold(settings, until=next_bucket(settings)) == 1
        assert query.folded_to(settings) > lo
        late = oracle.late_events(13, h["events"], sessions=15)
        h["events"] += late
        h["stored"] = deliver(settings, late, h["stored"])
        assert_reports_match_oracle(h, begin, end, "Asia/Kolkata")
        after = {seller: fills(settings, seller)[1:] for seller in SELLERS}  # (none: no rows since the step)
        assert any(after.values()) and all(w == query.folded_to(settings) for f in after.values() for w, _ in f)

        # too many rows after a fill: the next report replaces it
        monkeypatch.setattr(session_live_cache, "REFILL_ROWS", 0)
        late = oracle.late_events(14, h["events"], sessions=15)
        h["events"] += late
        h["stored"] = deliver(settings, late, h["stored"])
        session_reports._seen.clear()  # (a start is reused for up to REUSE_FILL_S)
        counts = {seller: len(fills(settings, seller)) for seller in SELLERS}
        assert_reports_match_oracle(h, begin, end, "UTC")  # with the fills they found: replaced on a thread
        wait_until(lambda: any(len(fills(settings, s)) > counts[s] for s in SELLERS), 60, what="a fill replaced")
        session_reports._seen.clear()
        assert_reports_match_oracle(h, begin, end, "Europe/Berlin")
        for seller in SELLERS:  # (the refill threads of this process are done when their lock is free)
            wait_until(lambda: not session_live_cache.lock(settings, seller).locked(), 60, what="refills done")
        # with the fills' rows deleted once superseded, the newest stays and reports stay exact
        monkeypatch.setattr(session_live_cache, "REFILL_ROWS", 10**9)
        monkeypatch.setattr(session_live_cache, "DROP_SUPERSEDED_S", 0)
        newest = {seller: fills(settings, seller)[-1] for seller in SELLERS}
        session_live_cache.drop_old(settings)
        assert {seller: fills(settings, seller) for seller in SELLERS} == {s: [f] for s, f in newest.items()}
        ((kept,),) = c.query(f"SELECT uniqExact(fill) FROM {db}.session_live_deltas").result_rows
        assert kept == len(SELLERS)
        session_reports._seen.clear()
        assert_reports_match_oracle(h, begin, end, "Europe/Berlin")


def test_session_reports_read_whole_days_by_day_and_the_ends_by_hour(history):
    """categories, offers and funnel take the whole UTC days of a range from the day sums (kinds '<kind>_day'
    of session_sums, rollup_pages_daily: migration 018) and the hours at its ends from the hourly ones: ranges
    starting and ending at midnight, inside an hour, across one midnight with no whole day, exactly one day,
    each against the oracle (part of the history folded, part live)."""
    start = history["start"]
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
    ranges = [
        (midnight, midnight + timedelta(days=2)),  # whole days only
        (midnight + timedelta(hours=5, minutes=40), midnight + timedelta(days=2, hours=3, seconds=1)),
        (midnight - timedelta(hours=9), midnight + timedelta(hours=13, minutes=5)),  # no whole day
        (midnight + timedelta(days=1), midnight + timedelta(days=2)),  # one day
        (midnight - timedelta(minutes=30), midnight + timedelta(days=1, milliseconds=1)),  # a day, an hour each side
    ]
    asked = [
        (seller, name, begin, end, "UTC")
        for begin, end in ranges
        for seller in SELLERS
        for name in ("categories", "offers", "funnel")
    ]
    answers = dict(zip(asked, fetch_all(history, asked)))
    for begin, end in ranges:
        for seller in SELLERS:
            want = oracle.reports(history["events"], seller, begin, end, "UTC")
            for name in ("categories", "offers"):
                assert answers[(seller, name, begin, end, "UTC")]["rows"] == want[name]["rows"], (name, begin, end)
            got = answers[(seller, "funnel", begin, end, "UTC")]["rows"]
            assert pick(got, ("step", "sessions", "abandoned")) == want["funnel"]["rows"], (begin, end)
            assert want["funnel"]["rows"][0]["sessions"] > 0


def test_bad_report_parameters_are_named(history):
    seller = SELLERS[0]
    h = {"Authorization": f"Bearer {history['tokens'][seller]}"}
    base = f"{history['api'].url}/v1/sellers/{seller}/reports"
    r = httpx.get(f"{base}/hourly", params={"tz": "Mars/Olympus"}, headers=h)
    assert r.status_code == 422 and "Mars/Olympus" in r.text
    r = httpx.get(f"{base}/hourly", params={"from": "yesterday"}, headers=h)
    assert r.status_code == 422 and "`from`" in r.text
    r = httpx.get(f"{base}/hourly", params={"from": "2025-01-02", "to": "2025-01-01"}, headers=h)
    assert r.status_code == 422 and "before" in r.text
    r = httpx.get(f"{base}/weather", headers=h)
    assert r.status_code == 404 and "funnel" in r.text
    r = httpx.get(f"{history['api'].url}/v1/sellers/{SELLERS[1]}/reports/funnel", headers=h)
    assert r.status_code == 404
