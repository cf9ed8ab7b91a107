"""/readyz against a ClickHouse that accepts connections and never answers (clickhouse/probe.py): it answers
503 within ~2 s saying ClickHouse does not answer, and asking again and again, even all at once, keeps
one probe (one connection, one thread) in flight. Before, each /readyz waited on its own connection for
clickhouse-connect's read timeout (300 s), and every call added a thread and a connection."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from api.main import create_api
from clickhouse.probe import Probe
from tests.integration.test_api_clickhouse_unavailable import SilentServer
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration


def test_readyz_says_within_2_s_that_a_hung_clickhouse_does_not_answer_and_probes_pile_up_nowhere(make_settings):
    hung = SilentServer()
    # no notifier: its own ClickHouse connections would be counted with the probe's
    s = make_settings(notify=False).model_copy(update={"clickhouse_dsn": f"http://127.0.0.1:{hung.port}"})
    api = ThreadServer(create_api(s, run_sink=False)).start()
    before = set(threading.enumerate())  # other tests' threads may live on (a probe ends after 60 s idle)
    try:
        started = time.monotonic()
        r = httpx.get(f"{api.url}/readyz", timeout=10)
        took = time.monotonic() - started
        assert r.status_code == 503 and r.json()["checks"]["clickhouse"] is False, r.json()
        assert r.json()["clickhouse"] == "ClickHouse does not answer (nothing within 2 s)", r.json()
        assert 2.0 <= took < 5.0, took  # 2 s and the request's own time on a loaded machine (before: 300 s)
        assert len(hung.conns) == 1  # the probe's

        answers: list[tuple[float, httpx.Response]] = []

        def ask() -> None:
            t0 = time.monotonic()
            answers.append((time.monotonic() - t0, httpx.get(f"{api.url}/readyz", timeout=10)))

        askers = [threading.Thread(target=ask) for _ in range(10)]
        for t in askers:
            t.start()
        for t in askers:
            t.join(10)
        assert len(answers) == 10
        for took, r in answers:
            assert r.status_code == 503 and r.json()["checks"]["clickhouse"] is False and took < 5.0, (took, r.json())
        # one probe in flight all along: one thread, one connection (the probe client's 5-s read timeout
        # may have ended the first one by now, and the next probe opened a second)
        new = [t for t in threading.enumerate() if t not in before]
        assert [t.name for t in new if t.name == "clickhouse-probe"] == ["clickhouse-probe"], new
        assert len(hung.conns) <= 2, len(hung.conns)
        assert len(new) <= 2, new
    finally:
        hung.close()
        api.stop()


def test_the_probe_answers_within_its_bound_from_many_threads_and_says_why_when_refused(settings):
    hung = SilentServer()
    away = settings.model_copy(update={"clickhouse_dsn": f"http://127.0.0.1:{hung.port}"})
    probe = Probe(away, answer_s=0.5, timeout_s=1.0)
    results: list[tuple[float, tuple[bool, str | None]]] = []

    def check() -> None:
        t0 = time.monotonic()
        answer = probe.check()
        results.append((time.monotonic() - t0, answer))

    try:
        askers = [threading.Thread(target=check) for _ in range(8)]
        for t in askers:
            t.start()
        for t in askers:
            t.join(5)
        assert len(results) == 8
        assert all(not ok and took < 2.0 for took, (ok, _) in results), results  # 0.5 s and scheduling
        assert len(hung.conns) == 1
    finally:
        hung.close()  # refused from now on: the probe says why
    ok, why = wait_until(lambda: (a := probe.check()) and "cannot answer" in (a[1] or "") and a, 10, what="refused")
    assert not ok and why is not None and why.startswith("ClickHouse cannot answer: "), why
    # the real engine (chdb) answers
    assert Probe(settings).check() == (True, None)
