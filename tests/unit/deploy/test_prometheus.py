"""The operator's kit: Prometheus scrape config and alert rules (checked and unit-tested by Debian's
promtool) and the Grafana dashboard, all naming only metrics the processes export."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "livemetrics.json"
SUFFIXES = re.compile(r"_(total|bucket|sum|count)$")
# a metric's name where prometheus-client defines it (Counter("livemetrics_...", ...), GaugeMetricFamily(...))
DEFINED = re.compile(r"(?:Counter|Gauge|Histogram|Summary|MetricFamily)\(\s*\"(livemetrics_[a-z_]+)\"")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: `make test` installs Debian's prometheus package (make ops-tools)"
    return path


def exported() -> set[str]:
    names = set()
    for src in ROOT.glob("*/**/*.py"):
        if src.parts[len(ROOT.parts)] in {"livemetrics", "producers", "streams", "clickhouse", "api"}:
            names |= set(DEFINED.findall(src.read_text()))
    return {SUFFIXES.sub("", n) for n in names}


def named_in(expr: str) -> set[str]:
    return {SUFFIXES.sub("", n) for n in re.findall(r"\blivemetrics_[a-z_]+", expr)}


@pytest.mark.parametrize(
    "args",
    [["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]],
    ids=lambda a: "-".join(a),
)
def test_promtool_accepts_the_config_and_the_rules_behave(promtool, args):
    out = subprocess.run([promtool, *args], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_unit_test():
    rules = set(re.findall(r"^\s*- alert: (\w+)", (PROM / "alerts.yml").read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", (PROM / "alerts_test.yml").read_text()))
    assert rules and rules == tested


def test_rules_and_dashboard_name_only_exported_metrics():
    have = exported()
    assert {"livemetrics_sink_lag_events", "livemetrics_worker_rebalances", "livemetrics_delivery_failures"} <= have
    rules = named_in((PROM / "alerts.yml").read_text())
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert rules - have == set()
    assert set().union(*map(named_in, exprs)) - have == set()


def test_dashboard_covers_every_exported_metric():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    shown = set().union(*(named_in(t["expr"]) for p in panels for t in p["targets"]))
    assert exported() - shown == set(), "add a panel for each new metric"
    assert len({p["id"] for p in panels}) == len(panels)
