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


def test_a_wait_for_a_helper_thread_is_as_alive_as_the_helper():
    """The sink's thread waits for its insert thread, which waits for its prepare thread (``waiting_for``):
    meanwhile the waiting thread is exactly as alive as its helper since the wait began. A helper inside a
    declared wait (a ClickHouse call) is waiting, up to its limit; a helper in its own code is silent since
    its last beat, and /healthz names it. Before, the sink declared its wait for the insert thread a wait on
    ClickHouse: an insert thread stuck in Python counted as alive for wait_limit_s (600 s)."""
    clock = ManualClock(0.0)
    sink = LoopWatch("sink", 10, 60, clock=clock, what="the sink's thread", wait_limit_s=100)
    insert = LoopWatch("sink", 10, 60, clock=clock, what="the insert thread", wait_limit_s=100)
    prepare = LoopWatch("sink", 10, 60, clock=clock, what="the prepare thread", wait_limit_s=100)
    insert.beat()  # its last step, long ago: idle until handed this one, which does not count as silence
    clock.now += 1000
    sink.beat()
    with sink.waiting_for(insert):
        clock.now += 5
        assert sink.silent_s() == 5.0 and sink.health() == (True, {})  # handed over, not started yet
        insert.beat()  # the step starts
        with insert.waiting("ClickHouse"):
            clock.now += 50
            assert sink.health() == (True, {"waiting_on": "ClickHouse", "waiting_s": 50.0})
            clock.now += 62.5  # past the helper's wait limit: its silence counts
            ok, details = sink.health()
            assert not ok and details["loop_silent_s"] == 12.5, details
        clock.now += 1
        assert sink.health() == (True, {})  # the wait ended with a beat of the helper
        clock.now += 9.5  # the helper in its own code, silent: stuck, and named
        ok, details = sink.health()
        assert not ok and details == {
            "status": "stuck",
            "loop_silent_s": 10.5,
            "detail": "the insert thread has not run for 10 s",
        }
        insert.beat()
        with insert.waiting_for(prepare):  # chained: the insert thread waits for the prepare step
            clock.now += 3
            with prepare.waiting("ClickHouse"):
                clock.now += 30
                assert sink.health() == (True, {"waiting_on": "ClickHouse", "waiting_s": 30.0})
            clock.now += 11
            ok, details = sink.health()
            assert not ok and details["detail"] == "the prepare thread has not run for 11 s", details
    assert sink.health() == (True, {})  # the wait ended with a beat of its own
    clock.now += 10.5
    assert not sink.health()[0] and sink.health()[1]["detail"] == "the sink's thread has not run for 10 s"


def test_the_watchdog_names_the_stuck_helper_and_logs_its_stack(caplog):
    exits: list[int] = []
    sink = LoopWatch("sink", 0.2, 0.5, beat_s=0.05, exit=exits.append, what="the sink's thread")
    insert = LoopWatch("sink", 0.2, 0.5, what="the insert thread")
    release = threading.Event()

    def stuck_in_python_code() -> None:
        insert.beat()  # the step starts, then blocks outside any declared wait
        release.wait()

    helper = threading.Thread(target=stuck_in_python_code, daemon=True)
    try:
        with caplog.at_level(logging.CRITICAL, logger="livemetrics.loop_watch"):
            sink.beat()
            sink.start_watchdog()
            with sink.waiting_for(insert):
                helper.start()
                wait_until(lambda: exits, 10, what="the watchdog's exit")
        assert exits == [EXIT_LOOP_STUCK]
        text = next(r for r in caplog.records if r.name == "livemetrics.loop_watch").getMessage()
        assert "sink: the insert thread has not run for" in text, text
        assert "in stuck_in_python_code" in text and "release.wait()" in text, text  # the helper's stack
    finally:
        sink.stop()
        release.set()
        helper.join(5)


def test_work_handed_to_a_helper_counts_until_it_is_done_even_when_nobody_blocks_on_it():
    """The sink's thread goes on beating while its prepare or insert step runs (it blocks only when batches
    pile up): the step handed over (``hand_over``) still counts, from the hand-over, until its future is done."""
    from concurrent.futures import Future

    clock = ManualClock(0.0)
    sink = LoopWatch("sink", 10, 60, clock=clock, what="the sink's thread")
    prepare = LoopWatch("sink", 10, 60, clock=clock, what="the prepare thread")
    prepare.beat()
    clock.now += 1000  # idle since its last step: not silent on the work handed to it now
    sink.beat()
    work: Future = Future()
    sink.hand_over(prepare, work)
    clock.now += 9
    sink.beat()
    assert sink.health() == (True, {})
    with prepare.waiting("ClickHouse"):  # the step waits on ClickHouse: fine however long (up to its limit)
        clock.now += 200
        sink.beat()
        assert sink.health() == (True, {})
    clock.now += 10.5  # the step in its own code, silent, while the sink's thread beats on
    sink.beat()
    ok, details = sink.health()
    assert not ok and details["detail"] == "the prepare thread has not run for 10 s", details
    work.set_result(None)  # done: no longer counted
    assert sink.health() == (True, {})
    done: Future = Future()
    done.set_result(None)
    sink.hand_over(prepare, done)  # already done when handed over: never counted
    clock.now += 5
    sink.beat()
    assert sink.health() == (True, {}) and not sink._handed
