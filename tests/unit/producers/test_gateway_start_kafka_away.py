"""A gateway started while Kafka is away listens after ``startup_wait_s`` (plus the topic limits' 3-s read),
not after the sum of its readers' waits: the keys (15 s), the IP-hash salt (10 s) and the topic limits (3 s)
were waited for one after the other, ~28 s in which a restarted gateway refused every connection. Meanwhile
it answers 503 with Retry-After and /readyz says 'starting'. Real Kafka clients, aimed at a closed port."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient

from livemetrics.settings import Settings
from operations.ports import free_port
from producers.gateway.app import create_gateway
from tests.support import factories as f


def test_a_gateway_started_with_kafka_away_listens_after_one_wait_not_the_sum(tmp_path):
    settings = Settings(
        dev_mode=True, kafka_bootstrap=f"127.0.0.1:{free_port()}", data_dir=tmp_path, startup_wait_s=1.0
    )
    app = create_gateway(settings)
    started = time.monotonic()
    with TestClient(app, client=("203.0.113.9", 5000)) as client:
        took = time.monotonic() - started
        ready = client.get("/readyz")
        sent = client.post(
            "/v1/events",
            content=json.dumps({"events": [f.page_view()]}).encode(),
            headers={"Authorization": "Bearer lm_pk_k1_secret"},
        )
    # 1 s for the keys and the salt together, 3 s for the topic limits; before: 15 + 10 + 3 s
    assert took < 8.0, took
    assert ready.status_code == 503 and ready.json()["status"] == "starting"
    assert sent.status_code == 503 and "has not read its keys yet" in sent.json()["error"]
    assert sent.headers["Retry-After"]
