"""A session counts for at most SESSION_MAX_ITEMS categories and offers, the first by name
(clickhouse/session_cap.py): a public browser key can send one session any number of distinct offer ids,
and unbounded, every fold step rewrote all of them. The materialized view, the fold and the reports' live
part apply the same rule, so the reports equal a recount with it (the oracle) before and after every fold,
also when a later insert brings names that sort before the kept ones; page views stay uncapped."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from clickhouse import query, session_fold, traffic_fold
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.session_cap import SESSION_MAX_ITEMS
from livemetrics.contract import COLUMN_NAMES, decode, to_row
from tests.integration.test_session_fold import assert_folded_has_every_state, past_last_insert
from tests.support import factories as f
from tests.support import oracle
from tests.support.old_schema import schema_before
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration
SELLER = "hoarder"


def _event(d: dict, session: str, at: int):
    return decode(msgspec.json.encode({**d, "seller_id": SELLER, "session_id": session, "received_at": at, "ts": at}))


def _offers(session: str, names, at: int) -> list:
    return [_event(f.page_view("offer", offer_id=n), session, at + i) for i, n in enumerate(names)]


def _categories(session: str, names, at: int) -> list:
    return [_event(f.page_view("category", category=n), session, at + i) for i, n in enumerate(names)]


def _insert(settings, events) -> None:
    get_client(settings).insert(
        f"{settings.clickhouse_database}.events", [to_row(e) for e in events], column_names=list(COLUMN_NAMES)
    )


def _next_bucket(settings, watermark: int) -> None:
    """Wait until inserts are labelled at or after ``watermark`` (rows labelled before it would not be folded)."""
    c = get_client(settings)
    wait_until(
        lambda: c.query("SELECT toUInt32(toStartOfInterval(now(), INTERVAL 10 SECOND))").result_rows[0][0] >= watermark,
        15,
        interval=0.2,
        what="the next insert bucket",
    )


def test_a_session_counts_for_its_first_items_by_name(settings):
    migrate(settings)
    c, db = get_client(settings), settings.clickhouse_database
    at = int(time.time() * 1000) // 1000 * 1000
    start, end = datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC) + timedelta(hours=1)
    k = SESSION_MAX_ITEMS

    def check(events):
        want = oracle.reports(events, SELLER, start, end, "UTC")
        for name in ("categories", "offers"):
            assert query.report(settings, name, SELLER, start, end)["rows"] == want[name]["rows"], name
        got = query.report(settings, "funnel", SELLER, start, end)["rows"]
        assert [{r: x[r] for r in ("step", "sessions", "abandoned")} for x in got] == want["funnel"]["rows"]

    # one insert: 20 more offers than the cap (o-020..o-139), the last ten viewed twice (they would lead
    # the report by views if the session counted for them); another session views o-050
    events = _offers("s1", [f"o-{i:03d}" for i in range(20, 140)], at)
    events += _offers("s1", [f"o-{i:03d}" for i in range(130, 140)], at + 500)
    events += _categories("s1", [f"c-{i:03d}" for i in range(k + 5)], at)
    events += _offers("s2", ["o-050"], at)
    _insert(settings, events)
    ((longest,),) = c.query(f"SELECT max(length(offers)) FROM {db}.session_updates").result_rows
    assert longest == k  # capped by the view
    check(events)  # live

    hi = past_last_insert(settings)
    assert session_fold.fold(settings, until=hi) == 1
    check(events)  # folded

    # later rows bring names that sort before the kept ones, and a checkout: the live part caps the
    # folded state merged with them exactly as the fold will
    _next_bucket(settings, hi)
    more = _offers("s1", [f"o-{i:03d}" for i in range(20)], at + 1000)
    more += _offers("s1", [f"o-{i:03d}" for i in range(140, 150)], at + 1000)
    more += [_event(f.checkout_started(), "s1", at + 2000)]
    events += more
    _insert(settings, more)
    check(events)  # the folded state plus live rows
    assert session_fold.fold(settings, until=past_last_insert(settings)) == 1
    check(events)

    ((offers, categories),) = c.query(
        f"SELECT max(length(offers)), max(length(categories)) FROM {db}.session_state"
    ).result_rows
    assert (offers, categories) == (k, k)
    per_kind = dict(
        c.query(
            f"SELECT kind, sum(sessions) FROM {db}.session_sums WHERE seller_id = {{s:String}} GROUP BY kind",
            parameters={"s": SELLER},
        ).result_rows
    )
    # s1: the first k; s2: o-050; the same again per UTC day (migration 018)
    assert per_kind == {
        "furthest": 2,
        "offer": k + 1,
        "category": k,
        "furthest_day": 2,
        "offer_day": k + 1,
        "category_day": k,
    }
    assert_folded_has_every_state(settings)
    # page views are not capped (the hourly rollup the reports' views come from)
    ((views, offers_viewed),) = c.query(
        f"SELECT sum(views), uniqExact(offer_id) FROM {db}.rollup_pages_hourly WHERE seller_id = {{s:String}} "
        "AND page_type = 'offer'",
        parameters={"s": SELLER},
    ).result_rows
    assert (views, offers_viewed) == (sum(1 for e in events if e.page and e.page.type == "offer"), 150)


def test_a_database_from_before_the_cap_caps_its_sessions_exactly(settings, monkeypatch):
    # as deployed before migration 013: the view kept every item, and the fold did too
    schema_before(settings, 13)
    c, db = get_client(settings), settings.clickhouse_database
    at = int(time.time() * 1000) // 1000 * 1000
    start, end = datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC) + timedelta(hours=1)
    k = SESSION_MAX_ITEMS
    events = _offers("s1", [f"o-{i:03d}" for i in range(10, k + 40)], at)  # k + 30 offers
    events += _offers("s2", ["o-050"], at)  # within s1's first k: the report shows at most 100 rows
    _insert(settings, events)
    hi = past_last_insert(settings)
    with monkeypatch.context() as m:
        m.setattr(query, "SESSION_MAX_ITEMS", 10 * k)  # the old fold: no cap that this session reaches
        # (nor session_folded_join, migration 014, nor the traffic fold, 016)
        m.setattr(traffic_fold, "fold_hours", lambda settings: None)
        assert session_fold.fold(settings.model_copy(update={"session_states_in_memory": False}), until=hi) == 1
    ((longest,),) = c.query(f"SELECT max(length(offers)) FROM {db}.session_state").result_rows
    assert longest == k + 30

    assert migrate(settings) == [
        "013_session_items_capped",
        "014_session_folded_join",
        "016_traffic_hours",
        "017_session_live_cache",
        "018_daily_sums",
        "019_sink_batches",
    ]
    # (015: schema_before)
    assert migrate(settings) == []
    views = {r[0] for r in c.query(f"SHOW TABLES FROM {db} LIKE 'session_updates%mv'").result_rows}
    assert views == {"session_updates_capped_mv"}
    # the old session gets more rows: the live part and then the fold count it for its first k items
    # only, its old contribution subtracted as it was counted
    _next_bucket(settings, hi)
    more = _offers("s1", [f"o-{i:03d}" for i in range(10)], at + 1000) + [_event(f.checkout_started(), "s1", at + 2000)]
    events += more
    _insert(settings, more)
    for _ in range(2):
        want = oracle.reports(events, SELLER, start, end, "UTC")
        for name in ("offers", "categories"):
            assert query.report(settings, name, SELLER, start, end)["rows"] == want[name]["rows"], name
        if query.folded_to(settings) == hi:
            assert session_fold.fold(settings, until=past_last_insert(settings)) == 1
    ((longest,),) = c.query(f"SELECT max(length(offers)) FROM {db}.session_state").result_rows
    assert longest == k
    ((offers,),) = c.query(
        f"SELECT sum(sessions) FROM {db}.session_sums WHERE seller_id = {{s:String}} AND kind = 'offer'",
        parameters={"s": SELLER},
    ).result_rows
    assert offers == k + 1
    assert_folded_has_every_state(settings)
