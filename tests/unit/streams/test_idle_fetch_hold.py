"""``faust_internals.hold_idle_fetches``'s rule over several brokers: the fetcher's wait values are shared by its
requests to every broker, so the idle hold (first byte or 200 ms) is taken only when every broker's last fetch
came back empty. Before, the last answer of any broker set them: a broker leading only quiet partitions turned a
busy broker's fetches into one per first byte. The real consumer against the real broker (one node):
tests/integration/test_worker_idle_fetches.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from streams import faust_internals

BUSY, IDLE = (65_536, 20), (1, 200)


def _wrapped(answers: dict[int, bool]) -> SimpleNamespace:
    """A stand-in for aiokafka's fetcher whose request to a node buffers records when ``answers[node]``."""

    async def send(assignment, node_id, request):
        return answers[node_id]

    fetcher = SimpleNamespace(_fetch_min_bytes=BUSY[0], _fetch_max_wait_ms=BUSY[1], _proc_fetch_request=send)
    consumer = SimpleNamespace(_thread=SimpleNamespace(_consumer=SimpleNamespace(_fetcher=fetcher)))
    assert faust_internals.hold_idle_fetches(consumer, *BUSY, IDLE[1])
    assert not faust_internals.hold_idle_fetches(consumer, *BUSY, IDLE[1])  # once per fetcher
    return fetcher


def _after(fetcher: SimpleNamespace, node: int) -> tuple[int, int]:
    asyncio.run(fetcher._proc_fetch_request(None, node, None))
    return fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms


def test_one_broker_holds_when_idle_and_batches_when_busy():
    answers = {1: False}
    fetcher = _wrapped(answers)
    assert _after(fetcher, 1) == IDLE
    answers[1] = True
    assert _after(fetcher, 1) == BUSY


def test_a_quiet_broker_does_not_undo_a_busy_brokers_batching():
    """Seen failing before the per-broker rule: the quiet broker's empty answer set the idle hold for both."""
    answers = {1: True, 2: False}
    fetcher = _wrapped(answers)
    assert _after(fetcher, 1) == BUSY
    assert _after(fetcher, 2) == BUSY  # broker 1's last fetch brought records
    answers[1] = False
    assert _after(fetcher, 1) == IDLE  # now every broker's last fetch was empty
    answers[2] = True
    assert _after(fetcher, 2) == BUSY
