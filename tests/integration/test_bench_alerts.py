"""`livemetrics bench alerts` in small (10 sellers, one hanging endpoint): every healthy seller's webhook
receives its alert and the figures, their same-run ceiling and the notifier's stage timings are printed. Speed itself is the bench's
job (BENCHMARKS.md), not this test's. It runs on the session's broker (``--kafka``; the bench's own topics and groups):
without it the bench starts a broker with throwaway_kafka, the very start of the tests' session broker."""

import json
import subprocess
import sys

import pytest

from operations.command import livemetrics_argv

pytestmark = pytest.mark.integration


def test_bench_alerts_delivers_to_every_healthy_webhook_and_prints_its_figures(tmp_path, kafka):
    out = subprocess.run(
        livemetrics_argv("bench", "alerts", "--sellers", "10", "--duration", "10", "--kafka", kafka),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    rows = {r["metric"]: r for r in (json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))}
    assert out.returncode == 0, out.stderr[-3000:]
    stages = ("to_alert", "to_notifier", "record", "queued", "post", "total")  # api/notify/timing.py
    assert set(rows) == {"alert_delivery_p50_ms", "alert_delivery_p99_ms", "bare_post_p50_ms", "bare_post_p99_ms"} | {
        f"alert_stage_{stage}_{p}_ms" for stage in stages for p in ("p50", "p99")
    }
    labels = rows["alert_delivery_p99_ms"]["labels"]
    assert labels["delivered"] == labels["expected"] == 9 and labels["hanging"] == 1
    assert 0 < rows["alert_delivery_p50_ms"]["value"] <= rows["alert_delivery_p99_ms"]["value"]
    assert 0 < rows["bare_post_p50_ms"]["value"] <= rows["bare_post_p99_ms"]["value"]
    for stage in stages:
        assert rows[f"alert_stage_{stage}_p50_ms"]["value"] <= rows[f"alert_stage_{stage}_p99_ms"]["value"]
        assert rows[f"alert_stage_{stage}_p99_ms"]["labels"]["count"] > 0
