"""The shared live part's refill after a fold round (clickhouse/session_reports.py, refill_after_fold; the fold
thread calls it through session_fold.refill_after_fold): the sellers whose reports used a fill get one at the
new watermark, through which their reports equal the oracle; it runs beside the fold thread (which it never
holds up), within a time budget, and a seller whose fill fails is logged and left to its next report."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from clickhouse import query, session_fold, session_live_cache, session_reports
from tests.integration.test_reports_oracle import (
    SELLERS,
    assert_reports_match_oracle,
    deliver,
    fills,
    history_of,
    next_bucket,
    report_range,
)
from tests.support import oracle
from tests.support.servers import wait_until
from tests.support.stack import module_settings

pytestmark = pytest.mark.integration


def fold_round(h, seed: int) -> threading.Thread | None:
    """Late events of folded sessions and new sessions (live rows after the fold), then what the fold thread
    does each round (session_fold.SessionFolder): the fold of the rows inserted before them, then the refill
    hook, which must return at once (the refill's thread, if one was started, is returned, not waited for)."""
    settings = h["settings"]
    until = next_bucket(settings)  # the rows delivered so far are labelled before it, these at or after it
    events = oracle.late_events(seed, h["events"], sessions=15)
    h["events"] += events
    h["stored"] = deliver(settings, events, h["stored"])
    assert session_fold.fold(settings, until=until) == 1
    returned: list[threading.Thread | None] = []
    hook = threading.Thread(target=lambda: returned.append(session_fold.refill_after_fold(settings)), daemon=True)
    hook.start()
    hook.join(10)
    assert not hook.is_alive(), "the fold round was held up by the refill"
    return returned[0]


def finished(refill: threading.Thread | None) -> None:
    if refill is not None:
        refill.join(120)
        assert not refill.is_alive()


def newest(settings) -> dict[str, int]:
    """Each seller's newest fill's watermark (0: none)."""
    return {seller: max((w for w, _ in fills(settings, seller)), default=0) for seller in SELLERS}


def test_the_refill_after_a_fold_round_is_exact_never_holds_the_fold_up_and_is_bounded(
    kafka, clickhouse_dsn, tmp_path, monkeypatch, caplog
):
    settings = module_settings(kafka, clickhouse_dsn, tmp_path, sink_batch_rows=200, session_fold_interval_s=0)
    start = oracle.dst_transition_before(datetime.now(UTC)) - timedelta(days=2)
    events = oracle.generate(21, SELLERS, start, days=4, sessions_per_seller=120)
    begin, end = report_range(start)
    monkeypatch.setattr(session_live_cache, "CACHE_MIN_ROWS", 0)  # the test's few sessions take the fill too
    monkeypatch.setattr(session_live_cache, "REFILL_ROWS", 10**9)
    # the test's steps take minutes on a loaded machine: its fills stay watched and usable throughout
    monkeypatch.setattr(session_live_cache, "FILL_MAX_AGE_S", 3600)
    monkeypatch.setattr(session_live_cache, "DROP_AFTER_S", 7200)
    with history_of(settings, events) as h:
        assert session_fold.fold(settings, until=h["boundary"]) >= 1
        assert_reports_match_oracle(h, begin, end, "Europe/Berlin")  # each seller's reports make a fill
        assert set(newest(settings).values()) == {query.folded_to(settings)}

        # a fold round: its refill makes every seller's fill at the new watermark, and the reports use those
        finished(fold_round(h, 22))
        lo = query.folded_to(settings)
        assert newest(settings) == dict.fromkeys(SELLERS, lo)
        made = {seller: fills(settings, seller) for seller in SELLERS}
        session_reports._seen.clear()
        assert_reports_match_oracle(h, begin, end, "Asia/Kolkata")
        assert {seller: fills(settings, seller) for seller in SELLERS} == made  # no report made a fill of its own

        # a refill waiting (here for a seller's fill lock, as behind a report making that seller's fill) does not
        # hold the fold round up; the next round starts no second refill meanwhile
        held = session_live_cache.lock(settings, SELLERS[0])
        with held:
            refill = fold_round(h, 23)
            assert refill is not None and refill.is_alive()
            assert fold_round(h, 24) is None
        finished(refill)  # the lock released, it went on: that seller's fill is of the watermark of then
        lo = query.folded_to(settings)
        assert newest(settings)[SELLERS[0]] == lo
        session_reports._seen.clear()
        assert_reports_match_oracle(h, begin, end, "UTC")  # the others' (of the round before) made by their reports
        assert newest(settings) == dict.fromkeys(SELLERS, lo)

        # a seller whose fill fails is logged and skipped; the others are refilled, and its report fills itself
        fill = session_live_cache.fill

        def failing(settings, seller_id, *args):
            if seller_id == SELLERS[1]:
                raise RuntimeError("fill failed (test)")
            return fill(settings, seller_id, *args)

        monkeypatch.setattr(session_live_cache, "fill", failing)
        before = newest(settings)
        with caplog.at_level(logging.ERROR, logger="clickhouse.session_reports"):
            finished(fold_round(h, 25))
        assert f"refilling the shared live part of {SELLERS[1]} after the fold failed" in caplog.text
        lo = query.folded_to(settings)
        assert newest(settings) == {**dict.fromkeys(SELLERS, lo), SELLERS[1]: before[SELLERS[1]]}
        monkeypatch.setattr(session_live_cache, "fill", fill)
        session_reports._seen.clear()
        assert_reports_match_oracle(h, begin, end, "America/New_York")
        assert newest(settings) == dict.fromkeys(SELLERS, lo)

        # the budget spent: no fill is started, the sellers are left to their next report
        monkeypatch.setattr(session_reports, "REFILL_BUDGET_S", 0)
        before = newest(settings)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="clickhouse.session_reports"):
            finished(fold_round(h, 26))
        assert "3 of 3 sellers left to their next report" in caplog.text
        assert newest(settings) == before
        session_reports._seen.clear()
        assert_reports_match_oracle(h, begin, end, "Europe/Berlin")
        assert newest(settings) == dict.fromkeys(SELLERS, query.folded_to(settings))

        # the fold thread, stopped, waits for its round's refill too (its queries must not outlive the client)
        monkeypatch.setattr(session_reports, "REFILL_BUDGET_S", 10.0)
        monkeypatch.setattr(settings, "session_fold_interval_s", 3600)
        with session_live_cache.lock(settings, SELLERS[0]):  # the refill waits for it
            folder = session_fold.SessionFolder(settings).start()
            assert folder._thread is not None
            wait_until(lambda: folder._refill is not None, 60, what="the round's refill started")
            stopper = threading.Thread(target=folder.stop, daemon=True)
            stopper.start()
            wait_until(lambda: not folder._thread.is_alive(), 60, what="the fold thread ended")
            assert stopper.is_alive() and folder._refill.is_alive()
        stopper.join(60)
        assert not stopper.is_alive() and not folder._refill.is_alive()
