"""livemetrics/loop_watch.py: a loop's heartbeat, what /healthz says of it, and the watchdog that ends a
process whose loop is stuck (a real loop on a real thread, blocked in a syscall; a recorded exit)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx

from livemetrics.loop_watch import EXIT_LOOP_STUCK, LoopWatch
from livemetrics.ops_http import OpsServer
from tests.support.manual_clock import ManualClock
from tests.support.servers import wait_until


def test_health_is_fine_before_the_first_beat_and_until_the_loop_is_silent_past_stale_s():
    clock = ManualClock(100.0)
    watch = LoopWatch("worker", stale_s=10, exit_after_s=60, clock=clock)
    clock.now += 1000
    assert watch.silent_s() is None and watch.health() == (True, {})  # start-up is not judged
    watch.beat()
    clock.now += 10
    assert watch.health() == (True, {})
    clock.now += 2.5
    ok, details = watch.health()
    assert not ok
    assert details == {
        "status": "stuck",
        "loop_silent_s": 12.5,
        "detail": "the event loop has not run for 12 s",
    }
    watch.beat()
    assert watch.health() == (True, {})
    assert LoopWatch("worker", stale_s=0, exit_after_s=0, clock=clock).health() == (True, {})  # 0: never


def _blocked_loop(watch: LoopWatch, release: threading.Event) -> threading.Thread:
    """A real event loop on its own thread running the heartbeat, until a callback blocks it in a syscall."""

    def stuck_in_a_blocking_call() -> None:
        release.wait()  # a lock wait: the thread sits in the kernel, as in a blocking socket read

    async def main() -> None:
        beats = asyncio.ensure_future(watch.run())
        await asyncio.sleep(0.3)
        stuck_in_a_blocking_call()
        beats.cancel()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    return thread


def test_healthz_served_from_a_thread_answers_503_once_the_loop_is_stuck():
    watch = LoopWatch("worker", stale_s=0.5, exit_after_s=0, beat_s=0.05)
    release = threading.Event()
    server = OpsServer("worker", "127.0.0.1", 0, lambda: (True, {}), watch.health)
    started = server.start()
    assert started is not None and server._server is not None
    url = f"http://127.0.0.1:{server._server.server_address[1]}/healthz"
    loop = _blocked_loop(watch, release)
    try:
        wait_until(lambda: watch.silent_s() is not None, 5, what="the first beat")
        assert httpx.get(url).status_code == 200
        r = wait_until(lambda: (r := httpx.get(url)).status_code == 503 and r, 10, what="/healthz 503")
        body = r.json()
        assert body["status"] == "stuck" and body["service"] == "worker"
        assert body["loop_silent_s"] >= 0.5  # more than stale_s, rounded to 0.1 s
    finally:
        release.set()
        loop.join(5)
        server.stop()


def test_the_watchdog_logs_the_loop_threads_stack_and_exits_with_its_code(caplog):
    exits: list[int] = []
    watch = LoopWatch("worker", stale_s=0.2, exit_after_s=0.5, beat_s=0.05, exit=exits.append)
    release = threading.Event()
    loop = _blocked_loop(watch, release)
    try:
        with caplog.at_level(logging.CRITICAL, logger="livemetrics.loop_watch"):
            wait_until(lambda: watch.silent_s() is not None, 5, what="the first beat")
            started = time.monotonic()
            assert watch.start_watchdog() is not None
            wait_until(lambda: exits, 10, what="the watchdog's exit")
        assert exits == [EXIT_LOOP_STUCK]
        assert time.monotonic() - started > 0.3  # not before the loop was silent for exit_after_s
        record = next(r for r in caplog.records if r.name == "livemetrics.loop_watch")
        text = record.getMessage()
        assert "the event loop has not run for" in text and f"exiting with code {EXIT_LOOP_STUCK}" in text
        assert "in stuck_in_a_blocking_call" in text and "release.wait()" in text  # where the loop is stuck
    finally:
        release.set()
        loop.join(5)


def test_the_watchdog_leaves_a_loop_that_beats_alone():
    exits: list[int] = []
    watch = LoopWatch("worker", stale_s=0.2, exit_after_s=0.3, beat_s=0.05, exit=exits.append)

    async def main() -> None:
        beats = asyncio.ensure_future(watch.run())
        await asyncio.sleep(0.1)
        watch.start_watchdog()
        for _ in range(20):  # 1 s of short work between beats
            time.sleep(0.01)  # blocking "work" between beats, shorter than stale_s
            await asyncio.sleep(0.04)
        beats.cancel()

    asyncio.run(main())
    watch.stop()
    assert exits == []
    assert LoopWatch("worker", 1, exit_after_s=0).start_watchdog() is None  # 0: no watchdog


def test_an_honest_wait_is_alive_and_says_on_what_until_its_limit():
    """A thread that is not an event loop (the sink's) declares its waits on other services: alive meanwhile,
    saying on what and for how long, up to ``wait_limit_s``; past it, its silence counts again."""
    clock = ManualClock(0.0)
    exits: list[int] = []
    watch = LoopWatch("sink", 10, 60, clock=clock, exit=exits.append, what="the sink's thread", wait_limit_s=100)
    watch.beat()
    with watch.waiting("ClickHouse"):
        clock.now += 50
        assert watch.health() == (True, {"waiting_on": "ClickHouse", "waiting_s": 50.0})
        with watch.waiting("Kafka"):  # nested: the outer wait goes on
            clock.now += 50
        assert watch.silent_s() == 0.0
        clock.now += 12.5
        ok, details = watch.health()
        assert not ok and details == {
            "status": "stuck",
            "loop_silent_s": 12.5,
            "detail": "the sink's thread has not run for 12 s",
        }
    assert watch.health() == (True, {})  # the wait ended with a beat
    clock.now += 10.5
    assert not watch.health()[0]  # outside a wait, 10 s of silence is stuck
