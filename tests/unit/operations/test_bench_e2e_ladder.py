"""``bench e2e``: the ladder it runs, the labels of each step's figures, and the open-loop generator's
proof that it offered its rate (against a real local HTTP server answering like the gateway)."""

from __future__ import annotations

import argparse
import asyncio
import json

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
    seen = {"latencies": [100.0, 200.0, 300.0], "answers": [5.0, 6.0, 7.0], "probes": 3, "on_kafka": [80.0, 90.0]}
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
