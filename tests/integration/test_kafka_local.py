"""The local broker launcher: idempotent start, status, stop, and clear messages when it cannot run."""

from __future__ import annotations

import socket

import pytest

from livemetrics.settings import Settings
from operations.kafka_local import KafkaLaunchError, LocalKafka
from tests.support.services import free_port

pytestmark = pytest.mark.integration


def test_start_is_idempotent_and_stop_leaves_nothing(tmp_path):
    s = Settings(data_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_controller_port=free_port())
    lk = LocalKafka(s)
    try:
        assert "running" in lk.start(quiet=True)
        pid = lk.pid()
        assert "already running" in lk.start(quiet=True) and lk.pid() == pid
        assert lk.status().startswith("running")
        assert (tmp_path / "kafka" / "broker.log").exists()
    finally:
        assert "stopped" in lk.stop()
    assert lk.status() == "stopped" and lk.pid() is None and not lk.answering()


def test_a_taken_port_is_reported(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        lk = LocalKafka(
            Settings(data_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{port}", kafka_controller_port=free_port())
        )
        with pytest.raises(KafkaLaunchError, match=f"port {port} is taken"):
            lk.start(quiet=True)


def test_missing_java_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn on this PATH
    lk = LocalKafka(
        Settings(data_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{free_port()}", cache_dir=tmp_path / "cache")
    )
    with pytest.raises(KafkaLaunchError, match="Java 17\\+ is needed"):
        lk.start(quiet=True)


def test_a_cluster_id_starting_with_a_dash_formats(tmp_path):
    # about 1 random id in 64 starts with "-"; the storage tool must not read it as an option
    s = Settings(data_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_controller_port=free_port())
    lk = LocalKafka(s)
    lk.provision(quiet=True)
    lk.home.mkdir(parents=True)
    lk.format_storage(lk._properties(), cluster_id="-Ab3dEfGhIjKlMnOpQrStU")
    assert "cluster.id=-Ab3dEfGhIjKlMnOpQrStU" in (lk.home / "data" / "meta.properties").read_text()
