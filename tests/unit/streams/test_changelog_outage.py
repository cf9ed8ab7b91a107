"""The worker's changelog rows wait out an unreachable broker for ``broker_outage_tolerance_s`` (not the
gateway's ``delivery_timeout_ms``); past it, the error says what happened (docs/operations.md). The broker here is a
closed local port: nothing answers."""

import asyncio
import time
from types import SimpleNamespace

import pytest

from livemetrics.settings import Settings
from streams.changelog import ChangelogDeliveryError, DirectChangelog
from tests.support.services import free_port


def test_rows_wait_for_the_tolerance_then_fail_with_a_clear_message():
    s = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", delivery_timeout_ms=300, broker_outage_tolerance_s=2.0)
    table = SimpleNamespace(changelog_topic_name="lm-sessions-changelog", data=SimpleNamespace(data={}))
    log = DirectChangelog(table, s)
    log.write(0, [(b"k", b"v")])
    assert table.data.data == {b"k": b"v"}  # the local store has the row at once

    async def flush() -> float:
        start = time.monotonic()
        with pytest.raises(ChangelogDeliveryError) as err:
            await log.flush()
        assert "broker_outage_tolerance_s=2 s" in str(err.value) and s.kafka_bootstrap in str(err.value)
        return time.monotonic() - start

    waited = asyncio.run(flush())
    assert 1.8 <= waited < 10, waited  # held past delivery_timeout_ms (0.3 s), up to the tolerance
