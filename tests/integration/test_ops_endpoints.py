"""Every long-running process is observable (docs/operations.md): the worker and the standalone sink answer
/healthz, /readyz and /metrics; a gateway of two processes reports one sum in any scrape; every
process writes JSON log lines with the same fields."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import multiprocess as mp
from prometheus_client.parser import text_string_to_metric_families

from livemetrics.topics import create_topics
from operations.command import livemetrics_argv
from producers.gateway.app import create_gateway
from tests.integration.test_gateway_workers import post, ready, start_gateway, workers_of
from tests.support import factories as f
from tests.support.servers import ThreadServer, WorkerProcess, wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.integration

LOG_FIELDS = {"ts", "level", "logger", "msg", "service", "pid"}


def samples(text: str, name: str) -> dict[tuple, float]:
    """``name``'s samples in a Prometheus text body, keyed by their sorted labels."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def scrape(port: int, path: str = "/metrics") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)


def answers(port: int, path: str, status: int = 200) -> bool:
    try:
        return scrape(port, path).status_code == status
    except httpx.HTTPError:
        return False


def json_lines(text: str, service: str) -> list[dict]:
    """Every non-empty line is a JSON object with the common fields and ``service``."""
    lines = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    for o in lines:
        assert LOG_FIELDS <= o.keys() and o["service"] == service, o
    return lines


def accepted_of(dir_, pid: int) -> float:
    """Events accepted by one gateway process: its own counter file read alone."""
    registry = CollectorRegistry()
    mp.MultiProcessCollector(registry, path=str(dir_))
    return sum(v for k, v in samples(generate_latest(registry).decode(), "livemetrics_events_accepted_total").items())


def test_a_gateway_of_two_processes_reports_the_sum_in_any_scrape(make_settings, add_seller, tmp_path):
    metrics_dir = tmp_path / "gw-metrics"
    settings = make_settings(gateway_port=free_port(), gateway_workers=2, gateway_metrics_dir=metrics_dir)
    create_topics(settings)
    key, _ = add_seller(settings, "shop-m")
    proc = start_gateway(settings, tmp_path / "gateway.log")
    port = settings.gateway_port
    try:
        wait_until(
            lambda: ready(f"http://127.0.0.1:{port}"),
            60,
            interval=0.2,
            what="the gateway ready",
            alive=lambda: proc.poll() is None,
        )
        wait_until(lambda: len(workers_of(proc)) == 2, 30, what="two worker processes")
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]  # spread by the kernel
        for i, s in enumerate(socks):
            body = {
                "events": [f.page_view("category", category="lamps", session_id=f"sess-m-{i:04d}") for _ in range(3)]
            }
            assert post(s, key, json.dumps(body).encode()) == 202
        for s in socks:
            s.close()
        per_worker = []
        for w in workers_of(proc):  # each process's own counts, from its own file
            one = tmp_path / f"one-{w.pid}"
            one.mkdir()
            shutil.copy(metrics_dir / f"counter_{w.pid}.db", one)
            per_worker.append(accepted_of(one, w.pid))
        assert len(per_worker) == 2 and min(per_worker) > 0 and sum(per_worker) == 96, per_worker
        # every scrape, whichever process answers it (a new connection each), is the sum over both
        for _ in range(12):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
                raw = b""
                while chunk := s.recv(65536):
                    raw += chunk
            text = raw.split(b"\r\n\r\n", 1)[1].decode()
            assert samples(text, "livemetrics_events_accepted_total") == {(("type", "all"),): 96.0}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
    lines = json_lines((tmp_path / "gateway.log").read_text(), "gateway")
    assert any(o["msg"].startswith("gateway workers started") for o in lines), lines


def test_the_worker_is_healthy_ready_and_counts(make_settings, add_seller, tmp_path):
    settings = make_settings(worker_metrics_port=free_port(), worker_session_timeout_s=6)
    key, _ = add_seller(settings, "shop-o")
    worker = WorkerProcess(settings, tmp_path).start()
    gateway = ThreadServer(create_gateway(settings)).start()
    port = settings.worker_metrics_port
    try:
        wait_until(lambda: answers(port, "/healthz"), 60, interval=0.2, what="worker /healthz", alive=worker.alive)
        wait_until(lambda: answers(port, "/readyz"), 90, interval=0.2, what="worker /readyz 200", alive=worker.alive)
        body = scrape(port, "/readyz").json()
        assert body["partitions_assigned"] >= 3 and not body["rebalancing"] and not body["recovering"], body
        n = 40
        for i in range(n):
            r = httpx.post(
                f"{gateway.url}/v1/events",
                json=f.page_view(session_id=f"sess-o-{i:04d}"),
                timeout=15,
                headers=f.browser_headers(key),
            )
            assert r.status_code == 202
        page = settings.topic("page-events")

        def caught_up() -> bool:
            text = scrape(port).text
            lag = {k: v for k, v in samples(text, "livemetrics_worker_consumer_lag").items() if ("topic", page) in k}
            ends = samples(text, "livemetrics_worker_end_offset")
            return (
                len(lag) == 3 and not any(lag.values()) and sum(v for k, v in ends.items() if ("topic", page) in k) == n
            )

        wait_until(caught_up, 60, interval=0.5, what="the worker's lag at 0 after every event")
        text = scrape(port).text
        assert samples(text, "livemetrics_worker_rebalances_total")[()] >= 1
        assert samples(text, "livemetrics_worker_ready")[()] == 1
        assert samples(text, "livemetrics_worker_table_keys")[(("table", "sessions"),)] >= n
        assert answers(port, "/nothing-here", 404)
    finally:
        gateway.stop()
        worker.stop()
    lines = json_lines(worker.log_path.read_text(), "worker")
    assert any(o["msg"].startswith("serving /healthz") and o["port"] == port for o in lines), lines


def test_the_standalone_sink_is_healthy_ready_and_counts(make_settings, add_seller, tmp_path):
    # its own chdb directory: a chdb engine belongs to one process, and this one never opens it
    settings = make_settings(sink_ops_port=free_port()).model_copy(
        update={"clickhouse_dsn": f"chdb://{tmp_path / 'ch'}", "data_dir": tmp_path / "sink-data"}
    )
    key, _ = add_seller(settings, "shop-s")
    gateway = ThreadServer(create_gateway(settings)).start()
    log = tmp_path / "sink.log"
    proc = subprocess.Popen(
        livemetrics_argv("sink"),
        env=settings.child_env(),
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    port = settings.sink_ops_port
    alive = lambda: proc.poll() is None  # noqa: E731
    try:
        wait_until(lambda: answers(port, "/healthz"), 120, interval=0.2, what="sink /healthz", alive=alive)
        wait_until(lambda: answers(port, "/readyz"), 90, interval=0.2, what="sink /readyz 200", alive=alive)
        assert scrape(port, "/readyz").json()["partitions_assigned"] == 4 * settings.partitions
        for i in range(25):
            r = httpx.post(
                f"{gateway.url}/v1/events",
                json=f.page_view(session_id=f"sess-s-{i:04d}"),
                timeout=15,
                headers=f.browser_headers(key),
            )
            assert r.status_code == 202
        wait_until(
            lambda: samples(scrape(port).text, "livemetrics_sink_rows_total").get((("table", "events"),)) == 25,
            60,
            interval=0.5,
            what="25 rows stored",
            alive=alive,
        )
        page = settings.topic("page-events")

        def no_lag() -> bool:  # the lag is measured once a second (clickhouse/sink_lag.py)
            lag = {
                k: v
                for k, v in samples(scrape(port).text, "livemetrics_sink_lag_events").items()
                if ("topic", page) in k
            }
            return len(lag) == settings.partitions and not any(lag.values())

        wait_until(no_lag, 10, interval=0.2, what="the sink's lag at 0 on every page-events partition", alive=alive)
        text = scrape(port).text
        assert samples(text, "livemetrics_sink_stalled")[()] == 0
        assert samples(text, "livemetrics_sink_batches_failed_total")[()] == 0
        assert samples(text, "livemetrics_sink_refused_total")[()] == 0
    finally:
        gateway.stop()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    lines = json_lines(log.read_text(), "sink")
    assert any(o["msg"].startswith("serving /healthz") and o["port"] == port for o in lines), lines


def test_the_api_process_logs_the_same_json_lines(make_settings, tmp_path):
    settings = make_settings(api_port=free_port()).model_copy(
        update={"clickhouse_dsn": f"chdb://{tmp_path / 'ch'}", "data_dir": tmp_path / "api-data"}
    )
    log = tmp_path / "api.log"
    proc = subprocess.Popen(
        livemetrics_argv("api", "--no-sink"),
        env=settings.child_env(),
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: answers(settings.api_port, "/healthz"),
            120,
            interval=0.2,
            what="api /healthz",
            alive=lambda: proc.poll() is None,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful stop
    lines = json_lines(log.read_text(), "api")
    assert any(o["msg"] == "request" and o["path"] == "/healthz" and o["status"] == 200 for o in lines), lines
