"""An API started while Kafka is away listens after ``startup_wait_s``, not after the sum of its readers'
waits: the tokens (15 s) and the notification channels (15 s) were waited for one after the other, ~30 s in
which a restarted API refused every dashboard. Meanwhile a token it does not know is 503 with Retry-After.
Real Kafka clients, aimed at a closed port."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from api.deps import KEYS_NOT_READ
from api.main import create_api
from livemetrics.settings import Settings
from operations.ports import free_port


def test_an_api_started_with_kafka_away_listens_after_one_wait_not_the_sum(tmp_path):
    settings = Settings(
        dev_mode=True, kafka_bootstrap=f"127.0.0.1:{free_port()}", data_dir=tmp_path, startup_wait_s=1.0, notify=False
    )
    started = time.monotonic()
    with TestClient(create_api(settings, None, run_sink=False)) as client:
        took = time.monotonic() - started
        me = client.get("/v1/me", headers={"Authorization": "Bearer lm_st_k1_secret"})
    assert took < 8.0, took  # 1 s for both together; before: 15 + 15 s
    assert me.status_code == 503 and me.json() == {"detail": KEYS_NOT_READ} and me.headers["Retry-After"]
