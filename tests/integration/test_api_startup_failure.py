"""An API whose start fails part-way (here its migrations: run_sink with a ClickHouse server that is not there)
raises, and stops what it had started: its key registry, live feed and channel book, their threads and topic
watches (api/main.py). Before, they ran on in the process: harmless in production, where the process exits,
but every test that failed an API's start left readers polling Kafka. Real broker; the ClickHouse address is a
port nothing listens on."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from api.main import create_api
from livemetrics import topic_watch
from tests.support.services import free_port
from tests.support.stack import module_settings

pytestmark = pytest.mark.integration


def test_an_api_whose_start_fails_stops_what_it_started(kafka, tmp_path):
    s = module_settings(kafka, f"http://default:@127.0.0.1:{free_port()}", tmp_path)
    before = set(threading.enumerate())
    app = create_api(s, run_sink=True)
    with pytest.raises(Exception) as failed:  # noqa: B017, PT011 - what clickhouse-connect raises for a refused connection
        with TestClient(app):
            pass
    assert "127.0.0.1" in str(failed.value) or "onnect" in str(failed.value), failed.value
    assert app.state.feed is not None and app.state.registry is not None  # they had started
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == [], left
    assert not any(w[1].startswith(s.topic_prefix) for w in topic_watch.open_watches())
