"""Issue 13, finding 7: 20,000 distinct category names from one seller (40 batches of 500 page views
straight to the raw topic, as a hostile storefront's 40 requests put them there) and 40 payment methods.
The worker stays up, produces nothing over the broker's limit, that seller's snapshot holds its first
``live_max_categories`` categories by name plus "~other" (= a recount applying the same rule, also after
a SIGKILL and restart), and another seller's live counts stay exact."""

from __future__ import annotations

import random
import re
import time
import uuid

import httpx
import pytest

from livemetrics import contract
from livemetrics.contract import Event, Page, Payment
from operations.ports import free_port
from streams.caps import OTHER
from tests.integration.test_streams_live import PAGES, Feed, Reader, event, rates_recount, settled, view, wave
from tests.support.servers import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

ATTACKER, OTHER_SELLER = "seller-flood", "seller-b"
CATEGORIES, BATCH = 20_000, 500
METHODS = 40
LONG = "a-long-category-name-as-a-hostile-storefront-sends-it"  # 20,000 of them: rows of over 1 MB uncapped


def flood(feed: Feed, batch: int) -> None:
    """One request's worth: 500 page views, each a new session on a new category."""
    now = int(time.time() * 1000)
    for i in range(batch * BATCH, (batch + 1) * BATCH):
        ev = Event(
            event_id=str(uuid.uuid4()),
            type="page_view",
            seller_id=ATTACKER,
            session_id=f"flood-{i:06d}",
            ts=now,
            received_at=now,
            page=Page(type="category", category=f"{i:05d}-{LONG}"),
        )
        feed.p.produce(feed.s.topic("page-events"), key=ev.session_id.encode(), value=contract.encode(ev))
        feed.sent.append(ev)
    feed.flush()


def pay_with_many_methods(feed: Feed) -> None:
    now = int(time.time() * 1000)
    for i in range(METHODS):
        ev = Event(
            event_id=str(uuid.uuid4()),
            type="payment_started",
            seller_id=ATTACKER,
            session_id=f"flood-pay-{i:04d}",
            ts=now,
            received_at=now,
            payment=Payment(method=f"method_{i:02d}", amount=1.0, currency="EUR", order_id=f"o-{i}"),
        )
        feed.p.produce(feed.s.topic("payment-events"), key=ev.session_id.encode(), value=contract.encode(ev))
        feed.sent.append(ev)
    feed.flush()


def capped(counts: dict[str, int], cap: int) -> dict[str, int]:
    """The rule of docs/live-semantics.md: the first ``cap`` names keep their counts, the rest are ~other."""
    names = sorted(counts)
    out = {n: counts[n] for n in names[:cap]}
    if names[cap:]:
        out[OTHER] = sum(counts[n] for n in names[cap:])
    return out


def capped_methods(by_method: dict, cap: int) -> dict:
    names = sorted(by_method)
    out = {m: by_method[m] for m in names[:cap]}
    for m in names[cap:]:
        acc = out.setdefault(OTHER, {step: [0] * 60 for step in ("started", "succeeded", "failed")})
        for step, arr in by_method[m].items():
            acc[step] = [a + b for a, b in zip(acc[step], arr)]
    return out


def attacker_matches(reader: Reader, feed: Feed, s) -> bool:
    snap = reader.poll().latest.get(ATTACKER)
    if snap is None or snap["recovering"]:
        return False
    want = feed.recount(ATTACKER)
    distinct = len(want["live"]["category"])
    want["live"]["category"] = capped(want["live"]["category"], s.live_max_categories)
    rpm = snap["rates_per_minute"]
    # folded: at least the distinct names past the cap (a name on two partitions would count twice)
    return (
        view(snap) == want
        and snap["folded"]["category"] >= distinct - s.live_max_categories
        and rpm["by_method"]
        == capped_methods(rates_recount(feed, ATTACKER, rpm["start_ms"])["by_method"], s.live_max_payment_methods)
    )


def other_seller_exact(reader: Reader, feed: Feed) -> bool:
    snap = reader.poll().latest.get(OTHER_SELLER)
    return (
        snap is not None and view(snap) == feed.recount(OTHER_SELLER) and snap["folded"] == {"category": 0, "offer": 0}
    )


def worker_counter(s, name: str, labels: str) -> float:
    """A counter from the worker's own /metrics (``worker_metrics_port``)."""
    text = httpx.get(f"http://127.0.0.1:{s.worker_metrics_port}/metrics", timeout=5).text
    m = re.search(rf"^{name}{{{labels}}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_twenty_thousand_categories_from_one_seller_are_capped_and_nothing_else_moves(make_settings, tmp_path):
    s = make_settings(partitions=3, worker_session_timeout_s=6, worker_metrics_port=free_port())
    assert (s.live_max_categories, s.live_max_payment_methods) == (200, 10)  # the defaults are what is tested
    w = WorkerProcess(s, tmp_path, "w").start()
    snaps = Reader(s, "live-metrics")
    feed = Feed(s)
    rng = random.Random(13)
    try:
        feed.send(event("warmup", "warmup-session-1", "page_view", PAGES[0]))
        feed.flush()
        wait_until(lambda: snaps.poll().latest.get("warmup"), 90, what="worker up", alive=w.alive)
        for batch in range(CATEGORIES // BATCH):
            flood(feed, batch)
            if batch % 8 == 0:
                wave(feed, rng, sellers=(OTHER_SELLER,), sessions=5, tag=f"b{batch}")
        pay_with_many_methods(feed)
        try:
            wait_until(
                lambda: attacker_matches(snaps, feed, s) and other_seller_exact(snaps, feed),
                60,
                interval=0.5,
                what="capped snapshot and exact counts",
                alive=w.alive,
            )
        except AssertionError:
            got = snaps.latest.get(ATTACKER) or {}
            raise AssertionError(
                f"alive={w.alive()} categories={len(got.get('live', {}).get('category', {}))} "
                f"folded={got.get('folded')}\n{view(snaps.latest.get(OTHER_SELLER))}\n"
                f"{feed.recount(OTHER_SELLER)}\n{w.log_tail()}"
            ) from None
        snap = snaps.latest[ATTACKER]
        assert len(snap["live"]["category"]) == s.live_max_categories + 1
        assert snap["live"]["category"][OTHER] == CATEGORIES - s.live_max_categories
        assert len(snap["rates_per_minute"]["by_method"]) == s.live_max_payment_methods + 1
        # Reported on the worker's /metrics too: the values each partition's row pushed into ~other (each
        # keeps its own first 200; the gauges agent's cap over their sum is in the snapshot's count).
        folded = worker_counter(s, "livemetrics_live_values_folded_total", 'dimension="category"')
        assert CATEGORIES - s.partitions * s.live_max_categories <= folded <= CATEGORIES, folded

        # The rule survives a crash: after a SIGKILL and a restart (replay from the changelogs), the same
        # values are kept, and the counts still equal the recount; sessions keep arriving meanwhile.
        w.kill()
        wave(feed, rng, sellers=(OTHER_SELLER,), sessions=10, tag="after-kill")
        w.start()
        wait_until(
            lambda: (
                attacker_matches(snaps, feed, s)
                and other_seller_exact(snaps, feed)
                and settled(snaps, (ATTACKER, OTHER_SELLER))
            ),
            60,
            interval=0.5,
            what="the same after SIGKILL + restart",
            alive=w.alive,
        )
        # Values come back out of ~other: the sessions of the first 200 names go to the home page, so the
        # next 200 names are shown with their exact counts (the uncapped sums, rebuilt after the restart).
        now = int(time.time() * 1000)
        for i in range(s.live_max_categories):
            ev = Event(
                event_id=str(uuid.uuid4()),
                type="page_view",
                seller_id=ATTACKER,
                session_id=f"flood-{i:06d}",
                ts=now,
                received_at=now,
                page=Page(type="home"),
            )
            feed.p.produce(s.topic("page-events"), key=ev.session_id.encode(), value=contract.encode(ev))
            feed.sent.append(ev)
        feed.flush()
        wait_until(
            lambda: attacker_matches(snaps, feed, s) and other_seller_exact(snaps, feed),
            30,
            interval=0.5,
            what="the next names out of ~other",
            alive=w.alive,
        )
        shown = snaps.latest[ATTACKER]["live"]["category"]
        assert min(k for k in shown if k != OTHER).startswith(f"{s.live_max_categories:05d}-")
        assert shown[OTHER] == CATEGORIES - 2 * s.live_max_categories
        log = w.log_path.read_text(errors="replace")
        assert "not produced" not in log and "MessageSizeTooLarge" not in log and "MSG_SIZE_TOO_LARGE" not in log, log[
            -3000:
        ]
    finally:
        snaps.close()
        w.stop()


SWARM, EARLY_SESSIONS, SWARM_SESSIONS, SESSIONS_MAX = "seller-swarm", 5, 300, 30


def swarm_event(i: int) -> Event:
    now = int(time.time() * 1000)
    return Event(
        event_id=str(uuid.uuid4()),
        type="page_view",
        seller_id=SWARM,
        session_id=f"swarm-{i:05d}",
        ts=now,
        received_at=now,
        page=Page(type="home"),
    )


def swarm_matches(reader: Reader, share: int, partitions: int, early_at: str, capped: bool) -> bool:
    """The flooding seller's snapshot: its early sessions exactly at ``early_at``; once capped, every
    partition holds its share (the early sessions among them) and the rest of the flood is not counted."""
    snap = reader.poll().latest.get(SWARM)
    if snap is None or snap["recovering"] or snap.get("sessions_capped") is not capped:
        return False
    live, active = snap["live"], EARLY_SESSIONS + (0 if not capped else partitions * share - EARLY_SESSIONS)
    return (
        live[early_at] == EARLY_SESSIONS
        and snap["active_sessions"] == active
        and live["home"] == active - EARLY_SESSIONS
    )


def test_a_flood_of_new_sessions_is_capped_per_seller_and_nothing_else_moves(make_settings, tmp_path):
    """Finding of session 9's red team: one public browser key, a fresh session id per event, filled the
    workers' sessions table for every seller. With live_sessions_per_seller_max (30 here: 3 partitions of
    23 each, streams/caps.py::sessions_per_partition) the flooding seller's new sessions past its share of
    a partition are not kept: its snapshot says ``sessions_capped``, its earlier sessions are still tracked
    exactly (they move on to the checkout), and another seller's counts equal the recount; the same after a
    SIGKILL and a restart (the counts rebuilt from the restored table, the uncommitted events replayed)."""
    from streams.caps import sessions_per_partition

    s = make_settings(
        partitions=3,
        worker_session_timeout_s=6,
        worker_metrics_port=free_port(),
        live_sessions_per_seller_max=SESSIONS_MAX,
    )
    share = sessions_per_partition(SESSIONS_MAX, s.partitions)
    w = WorkerProcess(s, tmp_path, "w").start()
    snaps = Reader(s, "live-metrics")
    feed = Feed(s)
    rng = random.Random(9)
    try:
        early = [f"early-{i}" for i in range(EARLY_SESSIONS)]
        for sid in early:  # at most 5 on a partition: under every share
            feed.send(event(SWARM, sid, "page_view", ("cart", None, None)))
        wave(feed, rng, sellers=(OTHER_SELLER,), sessions=5, tag="before")
        try:
            wait_until(
                lambda: (
                    swarm_matches(snaps, share, s.partitions, "cart", capped=False) and other_seller_exact(snaps, feed)
                ),
                90,
                interval=0.2,
                what="worker up, exact counts",
                alive=w.alive,
            )
        except AssertionError as e:
            raise AssertionError(f"{e}\n{snaps.latest.get(SWARM)}\n{w.log_tail()}") from None
        # The flood: 300 new sessions, ~100 per partition, each partition's share is 23.
        for i in range(SWARM_SESSIONS):
            ev = swarm_event(i)
            feed.p.produce(s.topic("page-events"), key=ev.session_id.encode(), value=contract.encode(ev))
        feed.flush()
        wave(feed, rng, sellers=(OTHER_SELLER,), sessions=5, tag="during")
        # The early sessions go on to the checkout: still tracked, exactly.
        for sid in early:
            feed.send(event(SWARM, sid, "page_view", ("checkout", None, None)))
        feed.flush()
        try:
            wait_until(
                lambda: (
                    swarm_matches(snaps, share, s.partitions, "checkout", capped=True)
                    and other_seller_exact(snaps, feed)
                ),
                60,
                interval=0.2,
                what="the flood capped, every other count exact",
                alive=w.alive,
            )
        except AssertionError:
            got = snaps.latest.get(SWARM) or {}
            raise AssertionError(
                f"share={share} swarm: capped={got.get('sessions_capped')} active={got.get('active_sessions')} "
                f"live={got.get('live')}\n{view(snaps.latest.get(OTHER_SELLER))}\n{feed.recount(OTHER_SELLER)}\n"
                f"{w.log_tail()}"
            ) from None
        assert snaps.latest[OTHER_SELLER]["sessions_capped"] is False
        # Counted on the worker's /metrics (no seller label), logged once per seller per minute.
        text = httpx.get(f"http://127.0.0.1:{s.worker_metrics_port}/metrics", timeout=5).text
        refused = float(re.search(r"^livemetrics_live_sessions_refused_total (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
        assert refused >= SWARM_SESSIONS - (s.partitions * share - EARLY_SESSIONS), refused
        log = w.log_path.read_text(errors="replace")
        assert 1 <= log.count(f"seller {SWARM!r} is at its live sessions cap") <= 2, log[-3000:]
        assert "at its live sessions cap" not in log.replace(f"seller {SWARM!r} is at", "")

        # The same after a SIGKILL and a restart (the counts rebuilt from the changelog-restored table, the
        # uncommitted part of the flood replayed), with more of the flood and the early sessions paying.
        w.kill()
        for i in range(SWARM_SESSIONS, SWARM_SESSIONS + 60):
            ev = swarm_event(i)
            feed.p.produce(s.topic("page-events"), key=ev.session_id.encode(), value=contract.encode(ev))
        for sid in early:
            feed.send(event(SWARM, sid, "page_view", ("payment", None, None)))
        wave(feed, rng, sellers=(OTHER_SELLER,), sessions=5, tag="after-kill")
        w.start()
        try:
            wait_until(
                lambda: (
                    swarm_matches(snaps, share, s.partitions, "payment", capped=True)
                    and other_seller_exact(snaps, feed)
                    and settled(snaps, (SWARM, OTHER_SELLER))
                ),
                60,
                interval=0.2,
                what="the same after SIGKILL + restart",
                alive=w.alive,
            )
        except AssertionError as e:
            got = snaps.latest.get(SWARM) or {}
            raise AssertionError(
                f"{e}\nafter restart, share={share} swarm: capped={got.get('sessions_capped')} "
                f"recovering={got.get('recovering')} active={got.get('active_sessions')} live={got.get('live')}\n"
                f"{view(snaps.latest.get(OTHER_SELLER))}\n{feed.recount(OTHER_SELLER)}\n{w.log_tail()}"
            ) from None
    finally:
        snaps.close()
        w.stop()
