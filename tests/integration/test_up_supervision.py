"""`livemetrics up` supervises: a child that dies (worker, API with its sink, the broker) or stops answering
(a SIGSTOPped gateway) is reported and restarted and serves again; one that keeps dying makes `up` stop
everything and say why. A second `up`, `api`, `sink`, `migrate` or `gateway` on a data directory or port in
use exits 1 naming the holder.

One `up --no-simulate` with its own broker is shared by the tests of this module (start-up is the slow
part); each test kills a different child and checks the others were left alone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from operations.command import livemetrics_argv
from operations.liveness import PROBE_EVERY_S
from tests.support.loop_blocker import block_loop, with_loop_blocker
from tests.support.servers import stays, wait_until
from tests.support.up_process import Up, gone, post_page_view

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    # A child silent for 8 s is taken for hung (20 s by default): short for the test, long for a loaded machine.
    # The children can have their event loop blocked on purpose (tests/support/loop_blocker.py); the worker's
    # own watchdog is off, so that what restarts a stuck worker here is up.
    env = with_loop_blocker(dict(os.environ))
    u = Up(
        tmp_path_factory.mktemp("up-supervised") / "data",
        ["--no-simulate"],
        LIVEMETRICS_HUNG_CHILD_S="8",
        LIVEMETRICS_LOOP_STUCK_EXIT_S="0",
        PYTHONPATH=env["PYTHONPATH"],
    )
    try:
        u.wait_up()
        yield u
        everything = u.descendants()
        u.proc.send_signal(signal.SIGTERM)
        assert u.proc.wait(90) == 0, u.text()[-3000:]
        assert not gone(everything, 60)
    finally:
        u.kill_all()


def _live_home(up: Up, seller: str) -> int:
    token = up.sellers()[seller]["token"]
    try:
        r = httpx.get(f"{up.api}/v1/sellers/{seller}/live", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError:
        return -1
    return r.json()["live"]["home"] if r.status_code == 200 else -1


def _kill_and_wait_restart(up: Up, name: str, timeout: float = 120) -> psutil.Process:
    old = up.child(name)
    others = [p for p in up.descendants() if p.pid != old.pid and p.ppid() == up.proc.pid]
    marks = up.text().count(f"{name} restarted")
    old.kill()
    wait_until(
        lambda: up.text().count(f"{name} restarted") > marks,
        timeout,
        interval=0.3,
        what=f"{name} restarted",
        alive=lambda: up.proc.poll() is None,
    )
    text = up.text()
    assert f"{name} killed by SIGKILL; last lines of" in text, text[-3000:]
    new = up.child(name)
    assert new.pid != old.pid
    if name != "kafka":  # a broker outage may take a client down too: that one is restarted as well
        assert all(p.is_running() for p in others), "a child other than the killed one was stopped"
    return new


@pytest.mark.timeout(240)
def test_a_killed_worker_is_restarted_and_counts_again(up):
    _kill_and_wait_restart(up, "worker")
    key = up.sellers()["nordic-outdoor"]["browser_key"]
    assert _live_home(up, "nordic-outdoor") == 0  # nothing sent to this seller before
    assert post_page_view(up.gateway, key, "after-worker-restart") == 202
    wait_until(lambda: _live_home(up, "nordic-outdoor") >= 1, 120, interval=0.5, what="the restarted worker's count")


@pytest.mark.timeout(240)
def test_a_killed_api_is_restarted_and_serves(up):
    _kill_and_wait_restart(up, "api")
    wait_until(lambda: _live_home(up, "acme-home") >= 0, 90, interval=0.5, what="the restarted API's answer")
    # ready once its embedded sink has its partitions again (a rebalance of the sink's group, ~10 s)
    wait_until(
        lambda: httpx.get(f"{up.api}/readyz", timeout=10).status_code == 200,
        60,
        interval=0.5,
        what="the restarted API's /readyz",
    )


def _stop_until_restarted(up, child: psutil.Process, name: str, timeout: float, interval: float) -> None:
    """SIGSTOP ``child`` (up's ``name``) and wait until up says it restarted it; SIGCONT it if it still runs."""
    marks = up.text().count(f"{name} restarted")
    child.send_signal(signal.SIGSTOP)
    try:
        wait_until(
            lambda: up.text().count(f"{name} restarted") > marks,
            timeout,
            interval=interval,
            what=f"the stopped {name} restarted",
            alive=lambda: up.proc.poll() is None,
        )
    finally:
        if child.is_running():
            child.send_signal(signal.SIGCONT)


@pytest.mark.timeout(240)
def test_a_stopped_gateway_is_killed_and_restarted_and_serves(up):
    """SIGSTOP: the process runs on but answers nobody (a client's POST would hang until its own timeout)."""
    old = up.child("gateway")
    others = [p for p in up.descendants() if p.pid != old.pid and p.ppid() == up.proc.pid]
    stopped_at = time.monotonic()
    _stop_until_restarted(up, old, "gateway", 90, interval=0.3)
    text = up.text()
    assert f"gateway (pid {old.pid}) has not answered {up.gateway}/healthz for " in text, text[-3000:]
    assert "(stopped or hung): killing it" in text and "gateway killed by SIGKILL; last lines of" in text
    # not before it was silent for hung_child_s (counted from its last answer, up to a probe's interval before the stop)
    assert time.monotonic() - stopped_at > 8 - PROBE_EVERY_S
    assert up.child("gateway").pid != old.pid
    assert all(p.is_running() for p in others), "a child other than the stopped one was stopped"
    key = up.sellers()["acme-home"]["browser_key"]

    def accepted():
        try:
            return post_page_view(up.gateway, key, "after-gateway-hang") == 202
        except httpx.HTTPError:
            return False

    wait_until(accepted, 60, interval=0.5, what="a 202 from the restarted gateway")


@pytest.mark.long  # make test-long; make test: the 5xx-as-no-answer rule in tests/unit/operations/test_liveness.py,
# a stuck worker's 503, exit and exact recount in tests/integration/test_worker_loop_watch.py
@pytest.mark.timeout(240)
def test_a_worker_whose_event_loop_is_stuck_is_killed_and_restarted_and_counts_again(up):
    """The worker's /healthz is served from a thread, which answers while the loop is stuck in a blocking
    call; it answers 503 once the loop has not run for loop_stale_s (10 s), which up takes for no answer."""
    old = up.child("worker")
    others = [p for p in up.descendants() if p.pid != old.pid and p.ppid() == up.proc.pid]
    marks = up.text().count("worker restarted")
    blocked_at = time.monotonic()
    block_loop(old.pid)
    wait_until(
        lambda: up.text().count("worker restarted") > marks,
        120,
        interval=0.3,
        what="the stuck worker restarted",
        alive=lambda: up.proc.poll() is None,
    )
    text = up.text()
    assert f"worker (pid {old.pid}) has not answered " in text and "(stopped or hung): killing it" in text, text[-3000:]
    assert time.monotonic() - blocked_at > 10 + 8 - PROBE_EVERY_S  # stale for loop_stale_s, then silent hung_child_s
    assert up.child("worker").pid != old.pid
    assert all(p.is_running() for p in others), "a child other than the stuck worker was stopped"
    key = up.sellers()["acme-home"]["browser_key"]
    before = wait_until(lambda: _live_home(up, "acme-home") + 1, 60, interval=0.5, what="the API's count") - 1
    assert post_page_view(up.gateway, key, "after-worker-hang") == 202
    wait_until(lambda: _live_home(up, "acme-home") > before, 120, interval=0.5, what="the restarted worker's count")


@pytest.mark.long  # the broker's restart (log recovery) is the slow part; the probe: tests/unit/operations/test_liveness.py
@pytest.mark.timeout(300)
def test_a_stopped_broker_is_killed_and_restarted_and_the_stack_serves_again(up):
    """A stopped JVM still accepts connections: up asks it a Kafka request, not a connect."""
    old = up.child("kafka")
    _stop_until_restarted(up, old, "kafka", 150, interval=0.5)
    text = up.text()
    assert f"kafka (pid {old.pid}) has not answered Kafka requests on 127.0.0.1:" in text, text[-3000:]
    new = up.child("kafka")
    assert new.pid != old.pid
    key = up.sellers()["tiny-books"]["browser_key"]

    def accepted():
        try:
            return post_page_view(up.gateway, key, "after-broker-hang") == 202
        except httpx.HTTPError:
            return False

    wait_until(accepted, 120, interval=1, what="a 202 after the broker restart")
    # The restarted broker is judged from its own start, not from the stopped one's last answer.
    stays(lambda: up.child("kafka").pid == new.pid, 12, what="the restarted broker left running")


@pytest.mark.long  # make test-long; make test's chaos test SIGKILLs the broker under `up` too (tests/integration/test_chaos.py)
@pytest.mark.timeout(300)
def test_a_killed_broker_is_restarted_on_its_data_dir_and_the_stack_serves_again(up):
    _kill_and_wait_restart(up, "kafka")
    key = up.sellers()["tiny-books"]["browser_key"]

    def accepted():
        try:
            return post_page_view(up.gateway, key, "after-broker-restart") == 202
        except httpx.HTTPError:
            return False

    wait_until(accepted, 120, interval=1, what="a 202 after the broker restart")
    wait_until(lambda: _live_home(up, "tiny-books") >= 1, 180, interval=1, what="a live count after the broker restart")


def _run(up: Up, *args: str, **env: str) -> subprocess.CompletedProcess:
    # Dev mode as up gives its children (this stack has the built-in secrets): the in-use check comes next.
    return subprocess.run(
        livemetrics_argv(*args),
        env={**up.env, "LIVEMETRICS_DEV_MODE": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.timeout(300)
def test_a_second_up_or_api_sink_migrate_gateway_on_what_is_in_use_names_the_holder(up):
    data = str(up.data_dir.resolve())
    r = _run(up, "up", "--no-simulate")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert (
        f"the data directory {data} is in use by pid {up.proc.pid} (" in r.stderr and " up --no-simulate)" in r.stderr
    )

    api = up.child("api")
    for cmd in (["api"], ["sink"], ["migrate"]):
        r = _run(up, *cmd, LIVEMETRICS_API_PORT=str(_free()))  # another port: the directory is what is taken
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert (
            f"livemetrics {cmd[0]}: the ClickHouse data directory {data}/clickhouse is in use by pid {api.pid} ("
            in r.stderr
            and "-m livemetrics api)" in r.stderr
        ), r.stderr

    gw = up.child("gateway")
    r = _run(up, "gateway")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"is in use by pid {gw.pid} (" in r.stderr and "-m livemetrics gateway)" in r.stderr, r.stderr


def _bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:  # the dying process's threads still hold it
        return False


def _free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(300)
def test_a_child_that_keeps_dying_makes_up_stop_everything_and_say_why(tmp_path, kafka):
    tag = f"t{os.getpid()}{int(time.time())}"
    u = Up(
        tmp_path / "data",
        ["--no-simulate", "--kafka", kafka],
        LIVEMETRICS_TOPIC_PREFIX=f"{tag}.",
        LIVEMETRICS_APP_ID=f"lm-{tag}",
        LIVEMETRICS_SINK_GROUP=f"sink-{tag}",
        LIVEMETRICS_STORE="memory://",
    )
    taken = socket.socket()
    try:
        u.wait_up()
        everything = u.descendants()
        port = int(u.env["LIVEMETRICS_API_PORT"])
        api = u.child("api")
        u.proc.send_signal(signal.SIGSTOP)  # `up` must not restart the API before the port is taken
        try:
            api.kill()
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            wait_until(lambda: _bound(taken, port), 30, interval=0.05, what="the killed API's port released")
            taken.listen(1)  # every restart of the API now fails: its port is taken
        finally:
            u.proc.send_signal(signal.SIGCONT)
        assert u.proc.wait(120) == 1, u.text()[-3000:]
        text = u.text()
        assert "api keeps dying (5 deaths within 5 minutes): stopping everything" in text, text[-3000:]
        assert f"port {port} is in use by pid {os.getpid()} (" in text  # the reason, from the API's log tail
        assert text.count("livemetrics up: restarting api in") == 4
        assert not gone(everything, 60) and not u.ours()
    finally:
        taken.close()
        u.kill_all()
