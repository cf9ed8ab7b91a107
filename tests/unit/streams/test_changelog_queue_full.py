"""A full changelog producer queue (the broker away, ``worker_changelog_queue_rows`` reached) never blocks
the worker's event loop (docs/live-semantics.md, "Table writes"): ``DirectChangelog.write`` returns at once,
the rows it had no room for wait behind the partition's earlier ones, ``room()`` waits for them with the
loop running, and a flush still waits for every row and fails when they cannot be delivered. Before, ``write``
retried ``produce`` in a blocking ``poll`` loop for as long as the queue stayed full: the loop's heartbeat
stopped and the watchdog (``livemetrics/loop_watch.py``) ended the worker with exit 70 during a broker
outage. The broker here is a closed local port: nothing answers, rows leave the queue only when they time
out (``broker_outage_tolerance_s``). With a broker: tests/integration/test_worker_outage_watchdog.py."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from livemetrics.settings import Settings
from streams.changelog import ChangelogDeliveryError, DirectChangelog
from tests.support.loop_gaps import record_gaps
from tests.support.services import free_port


def test_a_full_queue_never_blocks_the_loop_rows_wait_and_a_flush_still_waits_for_them():
    s = Settings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",  # nothing answers: rows leave the queue when they time out
        broker_outage_tolerance_s=1.0,
        worker_changelog_queue_rows=10,
    )
    table = SimpleNamespace(changelog_topic_name="lm-sessions-changelog", data=SimpleNamespace(data={}))
    log = DirectChangelog(table, s)

    async def scenario() -> float:
        gaps: list[float] = []
        beat = asyncio.ensure_future(record_gaps(gaps))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        log.write(0, [(f"k{i}".encode(), b"v") for i in range(14)])  # 10 fit the queue
        log.write(0, [(b"k0", None), (b"late", b"v")])  # behind the 4 waiting rows of partition 0
        wrote_s = time.monotonic() - start
        assert wrote_s < 0.5, f"write blocked the loop for {wrote_s:.1f} s with the queue full"
        assert table.data.data[b"late"] == b"v" and b"k0" not in table.data.data  # the local store at once
        assert log.waiting() == 6 and log.pending() == 16
        # The rows go into the queue as the earlier ones leave it (here: time out), the loop running meanwhile.
        await asyncio.wait_for(log.room(), 30)
        assert log.waiting() == 0
        with pytest.raises(ChangelogDeliveryError, match="^16 changelog rows not delivered"):
            await asyncio.wait_for(log.flush(), 30)
        beat.cancel()
        return max(gaps)

    longest_gap = asyncio.run(scenario())
    assert longest_gap < 0.5, f"the event loop did not run for {longest_gap:.2f} s"
    log.close(timeout=0)


def test_a_row_the_client_refuses_is_not_counted_as_in_flight_and_the_rest_of_the_write_is_not_produced():
    """``produce`` raising anything but BufferError (here a row over ``message.max.bytes``) ends the write:
    the rows before it are in flight and waited for, the refused row and those after it are not (a flush
    that counted them would wait for delivery reports that never come)."""
    from confluent_kafka import KafkaException

    s = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", broker_outage_tolerance_s=30.0)
    table = SimpleNamespace(changelog_topic_name="lm-sessions-changelog", data=SimpleNamespace(data={}))
    log = DirectChangelog(table, s)
    with pytest.raises(KafkaException):
        log.write(0, [(b"a", b"v"), (b"big", b"x" * 2_000_000), (b"c", b"v")])
    assert log.pending() == 1
    with pytest.raises(ChangelogDeliveryError, match="^1 changelog rows still in flight after 0.3 s"):
        asyncio.run(log.flush(timeout=0.3))
    log.close(timeout=0)
