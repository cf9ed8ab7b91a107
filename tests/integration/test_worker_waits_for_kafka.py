"""`livemetrics worker` started while no broker answers (a bootstrap address with nothing behind it) waits for
one, saying so in its log, instead of exiting 1 after 30 s: under `up --kafka`, a broker away for a few
minutes ended the worker past ``broker_outage_tolerance_s`` and then each restart 30 s later, and the fifth
death within 5 minutes made `up` stop every process, the gateway and the API too (operations/supervise.py).
SIGTERM still stops it at once."""

from __future__ import annotations

import time

import pytest

from operations.ports import free_port
from tests.support.waiting_process import waits_then_stops

pytestmark = pytest.mark.integration

GIVE_UP_BEFORE_S = 30  # the old code's create_topics deadline


def test_a_worker_started_while_kafka_is_down_waits_and_stops_on_sigterm(make_settings, tmp_path):
    s = make_settings(worker_metrics_port=0).model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    began = time.monotonic()
    text = waits_then_stops(
        "worker",
        s,
        tmp_path / "worker.log",
        lambda log: log.count("worker: waiting for Kafka at") >= 2 and time.monotonic() - began > GIVE_UP_BEFORE_S + 5,
        90,
        "still waiting past the old deadline",
    )
    assert s.kafka_bootstrap in text
