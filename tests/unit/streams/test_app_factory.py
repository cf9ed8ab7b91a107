"""The Faust app is built by a function, not at import: ``create_app`` makes independent apps from
settings; ``build_worker`` builds the worker once per process; a module that registers on the worker
says so when it is imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from livemetrics.settings import Settings
from streams.app import build_worker, create_app
from tests.unit.streams.test_minute_rates import worker  # noqa: F401 - the fixture: this process's worker

ROOT = Path(__file__).parents[3]


def test_create_app_builds_independent_apps_from_settings(tmp_path):
    memory = create_app(Settings(store="memory://", data_dir=tmp_path / "m", partitions=3, app_id="factory-m"))
    rocks = create_app(
        Settings(store="rocksdb://", data_dir=tmp_path / "r", worker_session_timeout_s=8.0, app_id="factory-r")
    )
    assert memory is not rocks
    assert (memory.conf.id, str(memory.conf.store), memory.conf.topic_partitions) == ("factory-m", "memory:", 3)
    assert (rocks.conf.id, str(rocks.conf.store)) == ("factory-r", "rocksdb:")
    assert rocks.conf.broker_session_timeout == 8.0 and rocks.conf.broker_heartbeat_interval == 2.0
    assert str(memory.conf.datadir).startswith(str((tmp_path / "m").resolve()))
    assert memory.conf.processing_guarantee.value == "at_least_once"
    assert not memory.agents and not rocks.agents  # nothing registered on an app of create_app


def test_build_worker_returns_the_built_worker_and_refuses_other_settings(worker):  # noqa: F811
    from streams import app as app_module
    from tests.unit.streams.test_minute_rates import WORKER_SETTINGS

    s = WORKER_SETTINGS["s"]
    assert build_worker(s) is app_module.app and app_module.settings == s
    assert {"track_sessions", "keep_gauges"} <= {name.rsplit(".", 1)[-1] for name in app_module.app.agents}
    with pytest.raises(RuntimeError, match="one worker per process"):
        build_worker(s.model_copy(update={"partitions": s.partitions + 1}))


def test_a_registering_module_imported_before_the_worker_is_built_says_so():
    out = subprocess.run(
        [sys.executable, "-c", "import streams.tables"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "streams.app.app is read before streams.app.build_worker(settings) built the worker" in out.stderr
