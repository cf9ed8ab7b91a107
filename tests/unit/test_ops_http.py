"""livemetrics/ops_http.py: /healthz, /readyz and /metrics of the processes without a web framework."""

from __future__ import annotations

import logging
import socket

import httpx

from livemetrics.ops_http import OpsServer


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_three_endpoints_and_readiness_with_its_reasons():
    state = {"ok": False}

    def ready():
        if state.get("boom"):
            raise RuntimeError("consumer closed")
        return state["ok"], {"partitions_assigned": 3 if state["ok"] else 0}

    port = _port()
    server = OpsServer("worker", "127.0.0.1", port, ready).start()
    assert server is not None
    url = f"http://127.0.0.1:{port}"
    try:
        assert httpx.get(url + "/healthz").json() == {"status": "ok", "service": "worker"}
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and r.json()["partitions_assigned"] == 0
        state["ok"] = True
        r = httpx.get(url + "/readyz?verbose=1")
        assert r.status_code == 200 and r.json() == {"status": "ok", "service": "worker", "partitions_assigned": 3}
        state["boom"] = True  # a failing check is "not ready", with the reason
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and r.json()["error"] == "RuntimeError: consumer closed"
        m = httpx.get(url + "/metrics")
        assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
        assert "python_info" in m.text
        assert httpx.get(url + "/other").status_code == 404
    finally:
        server.stop()


def test_a_taken_port_is_logged_and_the_process_goes_on(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="livemetrics.ops"):
            assert OpsServer("sink", "127.0.0.1", port, lambda: (True, {})).start() is None
    assert f"sink: cannot serve /healthz, /readyz, /metrics on 127.0.0.1:{port}" in caplog.text
