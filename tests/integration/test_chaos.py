"""The chaos test (docs/operations.md): a ``livemetrics up --no-simulate`` stack (its own broker and data dir, two
gateway worker processes) under steady storefront load; in turn the broker, the Faust worker, the API
with its embedded sink and one gateway worker are SIGKILLed, and each is waited for until it serves
again (`up` restarted it and it answers: a 202, a stable consumer group, /readyz). At the end, after the
load stopped: the gateway answered only 202 or 503 (a killed gateway worker drops its connections: a
network error, retried); live counts equal a recount of the events answered 202 within 30 s; every event
answered 202 is in ClickHouse, once unless its request was retried (a refused request may still have
reached Kafka: see docs/operations.md, Cluster), and never the same Kafka message twice.

``make test`` runs one round with small load (~3 min); ``make chaos`` runs ``LIVEMETRICS_TEST_CHAOS_ROUNDS``
rounds with ``LIVEMETRICS_TEST_CHAOS_SESSIONS`` sessions per storefront. Figures: JSON lines on stdout."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import httpx
import pytest

from operations.supervise import MAX_DEATHS, WINDOW_S
from tests.integration.test_broker_outage import group_lag
from tests.support.chaos import (
    LiveProbe,
    clickhouse_event_counts,
    keep,
    kill_child,
    kill_gateway_worker,
    statuses,
    up_settings,
)
from tests.support.outage_load import recount, view
from tests.support.servers import wait_until
from tests.support.timed_load import TimedStorefront
from tests.support.up_process import Up, gone

pytestmark = pytest.mark.integration

ROUNDS = int(os.environ.get("LIVEMETRICS_TEST_CHAOS_ROUNDS", "1"))
SESSIONS = int(os.environ.get("LIVEMETRICS_TEST_CHAOS_SESSIONS", "2000"))  # per storefront thread
SELLERS = ("acme-home", "nordic-outdoor")
# `up` gives up on a child that dies MAX_DEATHS times within WINDOW_S (supervise.py): rounds start at
# least this far apart, so that several rounds stay within the bound they test (found by the long run).
ROUND_S = WINDOW_S / (MAX_DEATHS - 1) + 10
WINDOW = "7200"  # live, session and recent windows longer than any run: the recount needs no clock


def _live(up: Up, seller: str, token: str) -> dict | None:
    try:
        r = httpx.get(f"{up.api}/v1/sellers/{seller}/live", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError:
        return None
    return view(r.json()) if r.status_code == 200 else None


@pytest.mark.timeout(600 + ROUNDS * 600)
def test_chaos_kills_under_load_lose_nothing_answered_202(tmp_path):
    up = Up(
        tmp_path / "data",
        ["--no-simulate"],
        LIVEMETRICS_GATEWAY_WORKERS="2",
        LIVEMETRICS_STORE="rocksdb://",
        LIVEMETRICS_LIVE_WINDOW_S=WINDOW,
        LIVEMETRICS_SESSION_TIMEOUT_S=WINDOW,
        LIVEMETRICS_RECENT_WINDOW_S=WINDOW,
    )
    fronts: list[TimedStorefront] = []
    try:
        up.wait_up()
        s = up_settings(up)
        sellers = up.sellers()
        probe = LiveProbe(up, "tiny-books")  # not under load: its count says the worker is back
        fronts = [
            TimedStorefront(
                f"{up.gateway}/v1/events",
                sellers[seller]["browser_key"],
                seller,
                sessions=SESSIONS,
                origin=up.gateway,
                seed=i,
                batch=20,
                pause=0.02,
                deadline_s=ROUNDS * 600 + 300,
            )
            for i, seller in enumerate(SELLERS * 2)
        ]
        for front in fronts:
            front.start()
        wait_until(lambda: sum(len(fr.acked_events()) for fr in fronts) >= 2000, 60, interval=0.1, what="steady load")
        kills = []
        for rnd in range(ROUNDS):
            started = time.monotonic()
            for what in ("kafka", "worker", "api", "gateway worker"):
                before = statuses(fronts)
                k = kill_gateway_worker(up, fronts) if what == "gateway worker" else kill_child(up, what, fronts, probe)
                after = statuses(fronts) - before
                kills.append(k)
                print(
                    json.dumps(
                        {
                            "round": rnd + 1,
                            "killed": k.what,
                            "back_s": round(k.back_s, 1),
                            "answered_503": after[503],
                            "network_errors": after["network"],
                            "answered_202": after[202],
                        }
                    )
                )
            while rnd + 1 < ROUNDS and time.monotonic() < started + ROUND_S:  # the load goes on meanwhile
                assert up.proc.poll() is None, up.text()[-3000:]
                assert all(fr.is_alive() for fr in fronts), (
                    "a storefront's sessions all ended (no load left): raise LIVEMETRICS_TEST_CHAOS_SESSIONS"
                )
                time.sleep(0.5)  # rounds spaced by the clock (ROUND_S)
        for front in fronts:
            front.stop()
        for front in fronts:
            front.join(60)
            assert not front.is_alive() and front.gave_up == 0, f"{front.name}: a batch never answered 202"
        stopped = time.monotonic()
        answers = statuses(fronts)
        assert set(answers) <= {202, 503, "network"}, f"the gateway answered {answers}"
        lags = {"worker": group_lag(s, s.app_id), "sink": group_lag(s, s.sink_group)}
        events = {x: [e for fr in fronts if fr.seller == x for e in fr.acked_events()] for x in SELLERS}
        tokens = {x: sellers[x]["token"] for x in SELLERS}
        try:
            wait_until(
                lambda: all(_live(up, x, tokens[x]) == recount(events[x]) for x in SELLERS),
                30,
                interval=0.2,
                what="live = recount after the load stopped",
                alive=lambda: up.proc.poll() is None,
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nlive: {[_live(up, x, tokens[x]) for x in SELLERS]}\n"
                f"recount: {[recount(events[x]) for x in SELLERS]}"
            ) from None
        recounted_s = time.monotonic() - stopped
        wait_until(
            lambda: group_lag(s, s.sink_group) == 0,
            180,
            interval=0.5,
            what="the sink caught up",
            alive=lambda: up.proc.poll() is None,
        )
        sink_drained_s = time.monotonic() - stopped
        # Stop `up` (the API holds the chdb directory), then read ClickHouse.
        everything = up.descendants()
        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(120) == 0, up.text()[-3000:]
        assert not gone(everything, 60)
        found = clickhouse_event_counts(up.data_dir, list(SELLERS))
        stored = found["ids"]
        # A Kafka message stored twice is the sink's fault, whatever the storefront did.
        assert not found["same_position"], (
            "Kafka messages stored twice in ClickHouse (topic, partition, first offset, last offset, messages, "
            f"the data parts holding them, positions holding different events): {found['same_position']}"
        )
        acked = Counter(e["event_id"] for fr in fronts for e in fr.acked_events())
        retried = set().union(*(fr.retried for fr in fronts))
        missing = set(acked) - set(stored)
        assert not missing, f"{len(missing)} events answered 202 are not in ClickHouse, e.g. {sorted(missing)[:3]}"
        assert set(stored) <= set(acked), "ClickHouse holds events of these sellers that were never answered 202"
        twice = {i for i, n in stored.items() if n > 1}
        assert twice <= retried, f"{len(twice - retried)} events posted once are stored more than once"
        print(
            json.dumps(
                {
                    "rounds": ROUNDS,
                    "acked_events": len(acked),
                    "requests": sum(answers.values()),
                    "answered_503": answers[503],
                    "network_errors": answers["network"],
                    "retried_events": len(retried),
                    "stored_twice": len(twice),
                    "worker_lag_at_stop": lags["worker"],
                    "sink_lag_at_stop": lags["sink"],
                    "live_equals_recount_s": round(recounted_s, 1),
                    "sink_drained_s": round(sink_drained_s, 1),
                    "sink_drain_events_per_s": round(lags["sink"] / max(sink_drained_s, 0.1)),
                    "back_s": {k.what: round(max(x.back_s for x in kills if x.what == k.what), 1) for k in kills},
                }
            )
        )
    except BaseException:
        print(json.dumps({"kept": str(keep(up))}))  # the logs and ClickHouse's data of the failed run
        raise
    finally:
        for front in fronts:
            front.stop()
        up.kill_all()
