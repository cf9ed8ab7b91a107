"""`livemetrics up` as a newcomer runs it: its own broker, migrations, worker, gateway, API with the
embedded sink, and the simulator; every live card, report and the alert feed get data through the API;
Ctrl-C stops everything and no process is left behind.

The live window and session timeout are shortened (40 s / 45 s) so that sessions *end* during the test:
abandonment in checkout and payment is only counted once a session has ended."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from livemetrics.settings import Settings
from tests.support.services import free_port
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration
SELLER = "acme-home"


def up_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMETRICS_")}
    env.update({
        "LIVEMETRICS_DATA_DIR": str(data_dir),
        "LIVEMETRICS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "LIVEMETRICS_KAFKA_CONTROLLER_PORT": str(free_port()),
        "LIVEMETRICS_KAFKA_HEAP": "512m",
        "LIVEMETRICS_GATEWAY_PORT": str(free_port()),
        "LIVEMETRICS_API_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    return env


class Up:
    def __init__(self, data_dir: Path, args: list[str], **env: str):
        self.data_dir = data_dir
        self.env = up_env(data_dir, **env)
        self.out = data_dir.parent / "up.out"
        self.err = data_dir.parent / "up.err"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "livemetrics.cli", "up", *args], env=self.env,
                                     stdout=open(self.out, "wb"), stderr=open(self.err, "wb"), start_new_session=True)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['LIVEMETRICS_API_PORT']}"

    def text(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace").replace("\r", "\n")

    def wait_up(self, timeout: float = 300) -> None:
        try:
            wait_until(lambda: "livemetrics is up." in self.out.read_text(), timeout, interval=0.5,
                       what="livemetrics up", alive=lambda: self.proc.poll() is None)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.text()[-4000:]}") from None

    def ours(self) -> list[psutil.Process]:
        """Every process on this machine started for this `up` (they all carry its data dir)."""
        found = []
        for p in psutil.process_iter():
            try:
                if p.pid != self.proc.pid and p.environ().get("LIVEMETRICS_DATA_DIR") == str(self.data_dir):
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        return found

    def kill_all(self) -> None:
        for p in self.ours() + [psutil.Process(self.proc.pid)] if self.proc.poll() is None else self.ours():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def get(url: str, token: str) -> dict:
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
    return r.json()


LIVE_CARDS = ("home", "category", "offer", "product", "cart", "checkout", "payment")
COUNTERS = ("active_sessions", "purchased_30m", "payment_failures_30m")


def snapshot_cards(snap: dict) -> set[str]:
    """The names of the cards that show something in this snapshot."""
    seen = {c for c in LIVE_CARDS if snap["live"].get(c)}
    seen |= {c for c in COUNTERS if snap.get(c)}
    seen |= {f"abandoned_{k}" for k, v in snap.get("abandoned_30m", {}).items() if v}
    return seen


@pytest.mark.timeout(600)
def test_up_runs_the_whole_product_with_simulated_traffic_and_stops_clean(tmp_path):
    up = Up(tmp_path / "data", ["--rate", "40"], LIVEMETRICS_LIVE_WINDOW_S="40", LIVEMETRICS_SESSION_TIMEOUT_S="45")
    try:
        up.wait_up()
        banner = up.out.read_text()
        assert re.search(r"dashboard  http://127\.0\.0\.1:\d+/dashboard/", banner)
        assert re.search(r"acme-home +lm_st_", banner)
        sellers = json.loads(Path(glob.glob(str(up.data_dir / "up" / "sellers-*.json"))[0]).read_text())
        token = sellers[SELLER]["token"]
        assert token in banner
        live_url = f"{up.api}/v1/sellers/{SELLER}/live"

        # Every live card must show data at some point of the run (a card may be 0 at one instant).
        want = set(LIVE_CARDS) | set(COUNTERS) | {"abandoned_checkout", "abandoned_payment"}
        seen: set[str] = set()
        started = time.monotonic()

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
        assert snap["active_sessions"] > 0 and snap["window_s"] == 40

        # Every report has rows (the sink stores the raw events in the API's chdb)
        from clickhouse.query import REPORTS

        for report in REPORTS:
            def rows(report=report):
                body = get(f"{up.api}/v1/sellers/{SELLER}/reports/{report}?tz=Europe/Berlin", token)
                if report == "funnel":
                    return all(r["sessions"] > 0 for r in body["rows"] if r["step"] in ("visit", "checkout", "purchase")) and body["rows"]
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
def test_a_child_that_dies_is_reported_and_the_rest_are_stopped(tmp_path, kafka):
    tag = f"t{os.getpid()}{int(time.time())}"
    up = Up(tmp_path / "data", ["--no-simulate", "--kafka", kafka], LIVEMETRICS_TOPIC_PREFIX=f"{tag}.",
            LIVEMETRICS_APP_ID=f"lm-{tag}", LIVEMETRICS_SINK_GROUP=f"sink-{tag}", LIVEMETRICS_STORE="memory://")
    try:
        up.wait_up()
        gateway = next(p for p in up.ours() if p.cmdline()[-1] == "gateway")
        others = [p for p in up.ours() if p.pid != gateway.pid]
        assert {p.cmdline()[-1] for p in others} == {"worker", "api"}
        gateway.kill()
        assert up.proc.wait(90) == 1
        text = up.text()
        assert "gateway exited with code -9" in text and "gateway.log" in text
        assert not [p for p in others if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not up.ours()
        # the shared broker was not started by `up`, so it is left running
        assert "kafka stopped" not in text
        from livemetrics.kafka_local import LocalKafka

        assert LocalKafka(Settings(kafka_bootstrap=kafka)).answering()
    finally:
        up.kill_all()
