"""`livemetrics up` as a newcomer runs it: its own broker, migrations, worker, gateway, API with the
embedded sink, and the simulator; every live card, report and the alert feed get data through the API;
Ctrl-C stops everything and no process is left behind.

The live window and session timeout are shortened (20 s / 25 s) so that sessions *end* during the test:
abandonment in checkout and payment is only counted once a session has ended. 25 s stays above the
tracker's 15 s heartbeat (producers/simulate/sessions.py), so a session reading a page is not ended early.
The demo-shop walk (its own seller, no simulated traffic) runs while the simulated sessions are still
on their way to ending: the wait for the abandonment cards is wall time either way."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from livemetrics.settings import Settings
from tests.support.servers import wait_until
from tests.support.up_process import Up, gone, post_page_view

pytestmark = [pytest.mark.integration, pytest.mark.browser]
SELLER = "acme-home"


def get(url: str, token: str) -> dict:
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
    return r.json()


LIVE_CARDS = ("home", "category", "offer", "product", "cart", "checkout", "payment")
COUNTERS = ("active_sessions", "purchased_30m", "payment_failures_30m")


def walk_the_demo_shop(gateway: str, api: str, token: str) -> None:
    """A newcomer clicks around the demo shop and sees their own session on its dashboard (no simulated
    traffic goes to the demo shop's seller); no page asks for a missing favicon."""
    from playwright.sync_api import sync_playwright

    from tests.browser.test_dashboard import wait_card
    from tests.support import factories as f

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu", f"--user-agent={f.CHROME}"]
        )
        try:
            ctx = browser.new_context(user_agent=f.CHROME)
            missing: list[str] = []
            ctx.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
            dash, shop = ctx.new_page(), ctx.new_page()
            dash.goto(f"{api}/dashboard/")
            dash.get_by_label("Read token").fill(token)
            dash.get_by_role("button", name="Open dashboard").click()
            dash.wait_for_selector('#conn[data-state="live"]', timeout=15000)
            shop.goto(f"{gateway}/demo/")
            wait_card(dash, "home", 1, timeout_ms=5000)
            shop.click("#cat-lamps")
            shop.wait_for_url("**/demo/c/lamps")
            wait_card(dash, "category", 1, timeout_ms=5000)
            wait_card(dash, "home", 0, timeout_ms=5000)
            assert missing == [], missing
        finally:
            browser.close()


def snapshot_cards(snap: dict) -> set[str]:
    """The names of the cards that show something in this snapshot."""
    seen = {c for c in LIVE_CARDS if snap["live"].get(c)}
    seen |= {c for c in COUNTERS if snap.get(c)}
    seen |= {f"abandoned_{k}" for k, v in snap.get("abandoned_30m", {}).items() if v}
    return seen


@pytest.mark.timeout(600)
def test_up_runs_the_whole_product_with_simulated_traffic_and_stops_clean(tmp_path):
    up = Up(tmp_path / "data", ["--rate", "40"], LIVEMETRICS_LIVE_WINDOW_S="20", LIVEMETRICS_SESSION_TIMEOUT_S="25")
    try:
        up.wait_up()
        banner = up.out.read_text()
        assert re.search(r"dashboard  http://127\.0\.0\.1:\d+/dashboard/", banner)
        # up's children start with the built-in secrets only because up says it runs them in dev mode
        assert "livemetrics up: development mode (LIVEMETRICS_DEV_MODE=true" in up.text()
        assert re.search(r"acme-home +lm_st_", banner)
        sellers = json.loads(Path(glob.glob(str(up.data_dir / "up" / "sellers-*.json"))[0]).read_text())
        token = sellers[SELLER]["token"]
        assert token in banner
        live_url = f"{up.api}/v1/sellers/{SELLER}/live"
        started = time.monotonic()

        # The first five minutes: the demo shop `up` prints, in one tab; its seller's dashboard in another.
        assert re.search(rf"demo shop  {re.escape(up.gateway)}/demo/", banner)
        walk_the_demo_shop(up.gateway, up.api, sellers["your-shop"]["token"])

        # Every live card must show data at some point of the run (a card may be 0 at one instant).
        want = set(LIVE_CARDS) | set(COUNTERS) | {"abandoned_checkout", "abandoned_payment"}
        seen: set[str] = set()

        def all_cards_seen():
            snap = get(live_url, token)
            assert snap["recovering"] is False or time.monotonic() - started < 30
            seen.update(snapshot_cards(snap))
            return want <= seen

        try:
            wait_until(all_cards_seen, 200, interval=2, what="every live card", alive=lambda: up.proc.poll() is None)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; missing {sorted(want - seen)}\n{up.text()[-3000:]}") from None

        # Bots are stored but never counted live: the simulator sends ~8 % bot sessions
        snap = get(live_url, token)
        assert snap["active_sessions"] > 0 and snap["window_s"] == 20

        # Every report has rows (the sink stores the raw events in the API's chdb)
        from clickhouse.query import REPORTS

        for report in REPORTS:

            def rows(report=report):
                body = get(f"{up.api}/v1/sellers/{SELLER}/reports/{report}?tz=Europe/Berlin", token)
                if report == "funnel":
                    return (
                        all(r["sessions"] > 0 for r in body["rows"] if r["step"] in ("visit", "checkout", "purchase"))
                        and body["rows"]
                    )
                return body["rows"]

            wait_until(rows, 60, interval=2, what=f"report {report}")

        # The alert feed: failures with the customer's contact details, and the burst's spike alert
        def alerts():
            items = get(f"{up.api}/v1/sellers/{SELLER}/payment-errors?limit=500", token)["items"]
            kinds = {i["kind"] for i in items}
            return {"payment_failed", "error_spike"} <= kinds and items

        items = wait_until(alerts, 90, interval=2, what="payment failures and an error-spike alert")
        failed = next(i for i in items if i["kind"] == "payment_failed")
        assert failed["customer"]["email"].endswith("@example.com") and failed["order"]["order_id"]
        assert get(f"{up.api}/v1/sellers/{SELLER}/alerts", token)["items"]

        r = httpx.get(f"{up.api}/dashboard", timeout=10, follow_redirects=True)
        assert r.status_code == 200 and "<html" in r.text.lower()

        children = up.ours()
        names = {" ".join(p.cmdline()) for p in children}
        for cmd in ("worker", "gateway", "api", "simulate", "kafka.Kafka"):
            assert any(cmd in n for n in names), f"{cmd} not running: {names}"

        # Ctrl-C: everything stops, the broker too
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(90) == 0, up.text()[-3000:]
        assert "stopped." in up.text()
        left = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left and not up.ours(), f"left behind: {[p.cmdline() for p in left]}"
    finally:
        up.kill_all()


@pytest.mark.timeout(300)
def test_a_child_that_dies_is_reported_restarted_and_everything_stops_on_sigterm(tmp_path, kafka):
    tag = f"t{os.getpid()}{int(time.time())}"
    up = Up(
        tmp_path / "data",
        ["--no-simulate", "--kafka", kafka],
        LIVEMETRICS_TOPIC_PREFIX=f"{tag}.",
        LIVEMETRICS_APP_ID=f"lm-{tag}",
        LIVEMETRICS_SINK_GROUP=f"sink-{tag}",
        LIVEMETRICS_STORE="memory://",
    )
    try:
        up.wait_up()
        gateway = up.child("gateway")
        others = [p for p in up.ours() if p.pid != gateway.pid]
        assert {p.cmdline()[-1] for p in others} == {"worker", "api"}
        gateway.kill()
        # reported with the reason and its log, then restarted: the gateway answers again
        wait_until(
            lambda: "gateway restarted" in up.text(),
            60,
            interval=0.3,
            what="gateway restarted",
            alive=lambda: up.proc.poll() is None,
        )
        text = up.text()
        assert "gateway killed by SIGKILL; last lines of" in text and "gateway.log" in text
        key = up.sellers()[SELLER]["browser_key"]
        wait_until(lambda: _answers(up.gateway, key), 60, interval=0.5, what="the restarted gateway's 202")
        assert up.child("gateway").pid != gateway.pid
        assert all(p.is_running() for p in others)  # the others were left alone
        everything = up.descendants()
        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(90) == 0, up.text()[-3000:]
        assert not gone(everything, 30) and not up.ours()
        # the shared broker was not started by `up`, so it is left running
        assert "kafka stopped" not in up.text()
        from operations.kafka_local import LocalKafka

        assert LocalKafka(Settings(kafka_bootstrap=kafka)).answering()
    finally:
        up.kill_all()


def _answers(gateway: str, key: str) -> bool:
    try:
        return post_page_view(gateway, key, "restart-probe") == 202
    except httpx.HTTPError:
        return False
