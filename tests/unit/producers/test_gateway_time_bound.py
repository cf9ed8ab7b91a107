"""The gateway bounds `ts` by its own clock (docs/ingest.md, "Time is bounded by the server") and stamps each
event's position in its request (``seq``, "Order")."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from livemetrics.contract import decode
from livemetrics.settings import Settings
from producers.gateway.ingest import ClientInfo, ingest
from producers.gateway.time_bound import DAY_MS, bounds, duration
from tests.support import factories as f

NOW = 1_795_503_867_234  # the gateway's clock in these tests (received_at)
SETTINGS = Settings(topic_prefix="tb.")  # defaults: max_clock_skew_s 86,400, event_ttl_days 400
SKEW = SETTINGS.max_clock_skew_s * 1000
TTL = SETTINGS.event_ttl_days * DAY_MS
LIVE = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME)
BACKFILL = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME, backfill=True)


def send(client: ClientInfo, *ts, s: Settings = SETTINGS):
    body = json.dumps({"events": [f.page_view(ts=t) for t in ts]}).encode()
    return ingest(body, client, s, received_at=NOW)


def test_live_events_are_accepted_up_to_the_bound_both_ways_and_not_one_ms_further():
    r = send(LIVE, NOW - SKEW, NOW, NOW + SKEW, NOW - SKEW - 1, NOW + SKEW + 1)
    assert [decode(v).ts for _, _, v in r.records] == [NOW - SKEW, NOW, NOW + SKEW]
    assert [(x.index, x.reason) for x in r.rejected] == [(3, "clock_skew"), (4, "clock_skew")]
    behind, ahead = (x.error for x in r.rejected)
    assert behind == (
        "`ts` 2026-11-23T07:04:27.233Z is 1 d 0.001 s before the gateway's clock (2026-11-24T07:04:27.234Z); "
        "live events are accepted up to 1 d back (max_clock_skew_s=86400; older history goes in as "
        "backfill with a server key) - at `$.ts`"
    )
    assert ahead == (
        "`ts` 2026-11-25T07:04:27.235Z is 1 d 0.001 s ahead of the gateway's clock (2026-11-24T07:04:27.234Z); "
        "at most 1 d ahead is accepted (max_clock_skew_s=86400) - at `$.ts`"
    )


def test_backfill_reaches_back_to_the_event_ttl_and_no_further_ahead_than_live():
    r = send(BACKFILL, NOW - TTL, NOW - 5 * DAY_MS, NOW + SKEW, NOW - TTL - 1, NOW + SKEW + 1)
    assert [decode(v).ts for _, _, v in r.records] == [NOW - TTL, NOW - 5 * DAY_MS, NOW + SKEW]
    assert [x.index for x in r.rejected] == [3, 4]
    assert r.rejected[0].error.endswith(
        "is 400 d 0.001 s before the gateway's clock (2026-11-24T07:04:27.234Z); "
        "backfill is accepted up to 400 d back (event_ttl_days=400) - at `$.ts`"
    )
    assert "ahead of the gateway's clock" in r.rejected[1].error and "max_clock_skew_s=86400" in r.rejected[1].error
    # the same five days back is history, not live
    assert [x.index for x in send(LIVE, NOW - 5 * DAY_MS).rejected] == [0]


def test_rfc3339_times_are_bounded_alike_and_the_dead_letter_copy_keeps_the_event():
    at = lambda ms, h: datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=h))).isoformat()  # noqa: E731
    r = send(LIVE, at(NOW + SKEW, 2), at(NOW + SKEW + 1, -5), "2026-01-01T10:00:00+02:00")
    assert len(r.records) == 1 and [x.index for x in r.rejected] == [1, 2]
    assert (
        "is 1 d 0.001 s ahead" in r.rejected[0].error and "is 326 d 23 h 4 min 27.234 s before" in r.rejected[1].error
    )
    assert r.rejected[1].raw["ts"] and r.rejected[1].raw["page"]["type"] == "home"


def test_a_setting_moves_the_bound():
    s = Settings(topic_prefix="tb.", max_clock_skew_s=60)
    r = send(LIVE, NOW + 60_000, NOW + 60_001, s=s)
    assert len(r.records) == 1 and "at most 1 min ahead is accepted (max_clock_skew_s=60)" in r.rejected[0].error


def test_timestamps_outside_the_contract_range_keep_their_own_error():
    r = send(LIVE, 1_000, 4_000_000_000_000_000)
    assert [(x.reason, x.error) for x in r.rejected] == [
        ("schema", "`ts` as a number must be epoch milliseconds after 2000-01-01 - at `$.ts`")
    ] * 2


@hsettings(max_examples=400, deadline=None)
@given(st.lists(st.integers(-TTL - 2 * SKEW, 2 * SKEW), min_size=1, max_size=8), st.booleans())
def test_an_event_is_accepted_exactly_when_its_ts_is_within_the_bound(offsets, backfill):
    client = BACKFILL if backfill else LIVE
    r = send(client, *(NOW + d for d in offsets))
    past = TTL if backfill else SKEW
    ok = [i for i, d in enumerate(offsets) if -past <= d <= SKEW]
    assert [decode(v).seq for _, _, v in r.records] == ok  # seq: the position in the body, gaps and all
    assert [x.index for x in r.rejected] == [i for i in range(len(offsets)) if i not in ok]
    assert all(x.reason == "clock_skew" and x.error.endswith(" - at `$.ts`") for x in r.rejected)
    assert bounds(NOW, backfill, SETTINGS) == (NOW - past, NOW + SKEW)


def test_seq_is_the_position_in_the_request_and_left_out_when_zero():
    r = send(LIVE, NOW, NOW, NOW)
    assert [decode(v).seq for _, _, v in r.records] == [0, 1, 2]
    assert b'"seq"' not in r.records[0][2] and b',"seq":2,' in r.records[2][2]


def test_duration_names_each_unit_once():
    assert duration(0) == "0 s" and duration(1) == "0.001 s" and duration(DAY_MS) == "1 d"
    assert duration(90_061_001) == "1 d 1 h 1 min 1.001 s" and duration(3_600_000 + 5_000) == "1 h 5 s"


def test_the_simulators_backfill_days_fit_the_bound():
    """`livemetrics simulate --backfill-days 14` (the run of docs/ingest.md) sends only history the gateway takes
    as backfill, and none of it would pass as live."""
    from producers.simulate.traffic import backfill_plan

    bodies = [e.body for _, e in backfill_plan(14, NOW - 35 * 60_000, 60, seed=3)]
    assert min(b["ts"] for b in bodies) < NOW - 13 * DAY_MS
    for at in range(0, len(bodies), 500):
        body = json.dumps({"events": bodies[at : at + 500]}).encode()
        assert ingest(body, BACKFILL, SETTINGS, received_at=NOW).rejected == []
    old = [b for b in bodies if b["ts"] < NOW - SKEW][:500]
    assert len(ingest(json.dumps({"events": old}).encode(), LIVE, SETTINGS, received_at=NOW).rejected) == len(old)
