"""The API process that runs the sink tells the truth about it (real broker, real chdb): /readyz turns 503
naming the sink when it has a lag and stored nothing for sink_stall_s, and ready again once it caught up;
/v1/history/lag gives any token only the lag figure; /metrics has the lag per partition."""

from __future__ import annotations

import httpx
import pytest

from api.main import create_api
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from tests.integration.test_clickhouse_sink import scalar, some_events
from tests.integration.test_clickhouse_sink_refused import produce_all
from tests.support.servers import ThreadServer, get_json, wait_until
from tests.support.stack import new_seller

pytestmark = pytest.mark.integration


def readyz(api) -> httpx.Response:
    return httpx.get(f"{api.url}/readyz", timeout=15)


def test_readyz_names_a_stalled_sink_and_history_lag_says_how_far_behind(make_settings):
    s = make_settings(sink_batch_rows=50, sink_batch_seconds=0.2, sink_stall_s=2.0)
    migrate(s)
    _, token = new_seller(s, "s1")
    _, other = new_seller(s, "s2")
    api = ThreadServer(create_api(s, run_sink=True)).start()
    db = s.clickhouse_database
    try:
        first, later = some_events(n_sessions=5, seed=21), some_events(n_sessions=15, seed=22)
        produce_all(s, first)
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") == len(first), 60, what="first rows")
        wait_until(lambda: readyz(api).status_code == 200, 30, what="ready")
        body = readyz(api).json()
        assert body["checks"]["sink"] is True and body["sink"]["stalled"] is False
        wait_until(
            lambda: get_json(f"{api.url}/v1/history/lag", token) == {"behind_seconds": 0.0, "stalled": False},
            10,
            what="no lag",
        )

        get_client(s).command(f"DETACH TABLE {db}.events")  # the sink cannot store for now
        produce_all(s, later)
        wait_until(lambda: readyz(api).status_code == 503, 30, what="not ready")
        body = readyz(api).json()
        assert body["status"] == "not ready" and body["degraded"] == ["sink"]
        assert body["checks"] == {"kafka": True, "clickhouse": True, "sink": False}
        assert body["sink"]["stalled"] and body["sink"]["events_behind"] > 0
        # stalled means more than 2 s without progress; the figure is rounded to 0.1 s (2.04 reads 2.0)
        assert body["sink"]["seconds_since_progress"] >= 2.0 and body["sink"]["oldest_unstored_s"] > 0
        for t in (token, other):  # the same figure for every seller, and nothing else
            lag = get_json(f"{api.url}/v1/history/lag", t)
            assert set(lag) == {"behind_seconds", "stalled"} and lag["stalled"] is True
            assert lag["behind_seconds"] >= body["sink"]["oldest_unstored_s"] > 0  # it only grows while stalled
        assert httpx.get(f"{api.url}/v1/history/lag", timeout=10).status_code == 401
        metrics = httpx.get(f"{api.url}/metrics", timeout=10).text
        assert "livemetrics_sink_stalled 1.0" in metrics
        behind = [line for line in metrics.splitlines() if line.startswith("livemetrics_sink_lag_events{")]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in behind) == body["sink"]["events_behind"]
        assert any(s.topic("page-events") in line for line in behind)

        get_client(s).command(f"ATTACH TABLE {db}.events")
        wait_until(lambda: readyz(api).status_code == 200, 60, what="ready again")
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") == len(first) + len(later), 30, what="rows")
        wait_until(lambda: get_json(f"{api.url}/v1/history/lag", token)["behind_seconds"] == 0.0, 10, what="no lag")
    finally:
        api.stop()
