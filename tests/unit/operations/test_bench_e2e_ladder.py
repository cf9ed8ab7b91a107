"""``bench e2e``: the ladder it runs, the labels of each step's figures, and the open-loop generator's
proof that it offered its rate (against a real local HTTP server answering like the gateway)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from operations.bench import e2e, paced_load


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"ladder": None, "rate": None, **kw})


def test_the_ladder_comes_from_ladder_then_rate_then_the_default():
    assert e2e.ladder_of(_args(ladder="2k,5k, 10k,1.5k,750")) == [2000, 5000, 10000, 1500, 750]
    assert e2e.ladder_of(_args(rate=3000.0)) == [3000]
    assert e2e.ladder_of(_args()) == [2000, 5000, 10000, 15000, 20000]
    with pytest.raises(ValueError):
        e2e.parse_rate("0")
    with pytest.raises(ValueError):
        e2e.parse_rate("fast")


def test_every_figure_of_a_step_is_labelled_with_its_offered_rate(capsys):
    load = paced_load.LoadCounts(sent=19_000, accepted=18_900, late_ms=[0.0, 1.0, 30.0], blocked=2)
    seen = {
        "latencies": [100.0, 200.0, 300.0],
        "answers": [5.0, 6.0, 7.0],
        "probes": 3,
        "on_kafka": [80.0, 90.0],
        "from_post": [105.0, 900.0, 310.0],  # a 202 that came late: its 202 -> WebSocket looks short
    }
    rows = e2e.report_step(
        2000, 10.0, 10.5, load, seen, {"worker": 0, "sink": 4}, 1.2, {"kafka": 2.0, "worker": 1.0}, 1.5
    )
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == rows
    assert all(r["labels"]["offered"] == 2000 for r in rows)
    by = {(r["metric"], r["labels"].get("process") or r["labels"].get("group")): r for r in rows}
    for metric in ("e2e_sent_events_per_s", "e2e_events_per_s", "e2e_latency_p50_ms", "e2e_latency_p99_ms"):
        assert (metric, None) in by
    assert by[("e2e_sent_events_per_s", None)]["value"] == 1900.0
    # 1,900 of 2,000 events/s sent: under 98 %, so the step says its generator did not offer the rate
    assert by[("e2e_sent_events_per_s", None)]["labels"]["generator_limited"] is True
    assert by[("e2e_sent_events_per_s", None)]["labels"]["sends_blocked"] == 2
    assert by[("kafka_snapshot_latency_p99_ms", None)]["value"] == 90.0  # the same-run ceiling
    assert by[("e2e_post_latency_p99_ms", None)]["value"] == 900.0  # POST -> WebSocket, beside 202 -> WebSocket
    assert by[("e2e_events_per_s", None)]["value"] == 1890.3  # the probes' events are confirmed ones too
    assert by[("consumer_lag_events", "sink")]["value"] == 4
    assert by[("cpu_s_per_1k_events", "kafka")]["value"] == round(2.0 / 18_903 * 1000, 3)
    assert {k for (m, k) in by if m == "cpu_s_per_1k_events"} == {"kafka", "worker"}


async def _gateway_like(answer: asyncio.Event) -> tuple[asyncio.Server, int, list[int]]:
    """An HTTP/1.1 server answering each POST with 202 ``{"accepted": N}`` (N = events in the body),
    once ``answer`` is set."""
    received: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                n = len(json.loads(await reader.readexactly(length))["events"])
                received.append(n)
                await answer.wait()
                body = json.dumps({"accepted": n}).encode()
                writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], received


def test_the_generator_offers_its_rate_and_counts_every_answer():
    async def main():
        answer = asyncio.Event()
        answer.set()
        server, port, received = await _gateway_like(answer)
        async with server:
            return await paced_load.offer(port, ["k1", "k2"], "ua", rate=4000, duration=1.0, batch=50), received

    counts, received = asyncio.run(main())
    assert counts.sent == 4000 == sum(received) == counts.accepted
    assert counts.errors == {} and counts.blocked == 0
    assert not e2e.generator_limited(counts.sent, 4000, 1.0)


def test_a_stack_that_stops_answering_shows_as_blocked_sends_not_as_a_lower_offer():
    async def main():
        answer = asyncio.Event()
        server, port, _ = await _gateway_like(answer)
        counts = paced_load.LoadCounts()
        async with server:
            task = asyncio.create_task(
                paced_load.offer(port, ["k"], "ua", rate=2000, duration=0.5, batch=50, max_connections=4, counts=counts)
            )
            while not counts.blocked and not task.done():  # four requests in flight, none answered
                await asyncio.sleep(0.005)
            answer.set()
            return await task

    counts = asyncio.run(main())
    assert counts.blocked > 0  # four requests in flight, none answered: later sends had to wait
    assert counts.sent == 1000 == counts.accepted


def test_the_broker_counters_become_rates_by_request_topic_and_thread_group():
    from operations.bench import broker_requests

    def reading(fetch: int, page_fetches: int, handler_ns: int) -> str:
        return "\n".join(
            [
                f"count\tkafka.network:type=RequestMetrics,name=RequestsPerSec,request=Fetch,version=11\t{fetch}",
                f"count\tkafka.network:type=RequestMetrics,name=RequestsPerSec,request=Fetch,version=16\t{fetch}",
                "count\tkafka.network:type=RequestMetrics,name=RequestsPerSec,request=Metadata,version=13\t7",
                "count\tkafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec,"
                f"topic=page-events\t{page_fetches}",
                f"thread\tdata-plane-kafka-request-handler-0\t{handler_ns}",
                f"thread\tdata-plane-kafka-request-handler-1\t{handler_ns}",
                "thread\tkafka-1-raft-io-thread\t5",
            ]
        )

    before = broker_requests.parse(reading(100, 50, 0))
    after = broker_requests.parse(reading(300, 250, 1_000_000_000))
    per_s = broker_requests.rates(before, after, 2.0)
    assert per_s["requests"] == {"Fetch": 200.0}  # both versions summed; Metadata did not move
    assert per_s["topic_fetch_requests"] == {"page-events": 100.0}
    assert per_s["thread_cpu_s"] == {"request_handlers": 1.0}  # 2 threads x 1 s over 2 s


def test_a_step_says_how_long_each_process_waited_for_a_core_and_what_ran_beside_the_stack(capsys):
    load = paced_load.LoadCounts(sent=20_000, accepted=20_000)
    seen = {"latencies": [100.0], "answers": [5.0], "probes": 1, "on_kafka": [80.0]}
    contention = e2e.Contention({"worker": 0.4, "api": 0.1}, busy=1.9, stack=1.5, stolen=0.05)
    rows = e2e.report_step(2000, 10.0, 10.5, load, seen, {}, 1.2, {"worker": 1.0}, 1.5, contention)
    by = {(r["metric"], r["labels"].get("process")): r for r in rows}
    assert by[("runqueue_wait_s_per_s", "worker")]["value"] == 0.4
    assert by[("runqueue_wait_s_per_s", "api")]["value"] == 0.1
    outside = by[("outside_cpu_cores", None)]
    assert outside["value"] == 0.4  # 1.9 busy cores, 1.5 of them the stack's
    assert outside["labels"]["offered"] == 2000
    assert (outside["labels"]["machine_busy_cores"], outside["labels"]["stolen_cores"]) == (1.9, 0.05)


def test_two_processes_on_one_core_show_as_waiting_for_it():
    """``_sched`` reads each thread's run-queue wait: two spinning processes pinned to one core wait about
    half their time each (about one second per second together)."""
    core = min(os.sched_getaffinity(0))
    spin = f"import os, sys, time\nos.sched_setaffinity(0, {{{core}}})\nsys.stdout.write('go\\n')\nsys.stdout.flush()\n"
    spin += "end = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == b"go\n"
        pids = {f"spin{i}": p.pid for i, p in enumerate(procs)}
        before, t = e2e._sched(pids), time.monotonic()
        time.sleep(1.0)  # the measured window itself: wall time on a busy core is what this test is about
        after, window = e2e._sched(pids), time.monotonic() - t
        ran = sum(after[n][0] - before[n][0] for n in pids)
        waited = sum(after[n][1] - before[n][1] for n in pids)
        assert ran <= window * 1.1  # one core between them
        assert waited >= 0.5 * window  # each runnable all the time, so one waits while the other runs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_the_timeline_writes_cumulative_samples_per_process_and_the_probes(tmp_path):
    """``--timeline``: samples with each process's CPU, run-queue wait and its main thread's, the
    machine's busy time; step and probe lines in between, all JSON lines with a monotonic time."""
    path = tmp_path / "timeline.jsonl"
    line = e2e.Timeline(path, {"generator": os.getpid()})
    line.note("step", offered=15000)
    line.sample()
    end = time.process_time() + 0.2
    while time.process_time() < end:  # CPU for the next sample to count
        pass
    line.sample()
    line.note("probe", n=1, acked=1.0, ws_ms=250.0)
    line.stop()  # never started: stop only closes the file
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["step", "sample", "sample", "probe"]
    assert [r["t"] for r in rows] == sorted(r["t"] for r in rows)
    first, second = rows[1]["processes"]["generator"], rows[2]["processes"]["generator"]
    # (and rocksdb_ran_s when this pytest process has RocksDB threads: an earlier test's store in the same worker)
    assert set(first) - {"rocksdb_ran_s"} == {"cpu_s", "ran_s", "waited_s", "main_ran_s", "main_waited_s"}
    assert second["cpu_s"] - first["cpu_s"] >= 0.15  # cumulative: the busy loop between them
    assert second["main_ran_s"] - first["main_ran_s"] >= 0.15  # this test runs on the main thread
    assert rows[2]["busy_s"] >= rows[1]["busy_s"] + 0.15
    assert rows[3] == {"kind": "probe", "t": rows[3]["t"], "n": 1, "acked": 1.0, "ws_ms": 250.0}
