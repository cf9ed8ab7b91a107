"""Shared fixtures. Real services only: a real Kafka broker and a real ClickHouse engine."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from livemetrics import keys
from livemetrics.settings import Settings
from livemetrics.topics import create_topics
from tests.support import services


def pytest_addoption(parser):
    parser.addoption("--screenshots-dir", default=None,
                     help="browser tests save dashboard screenshots here (make screenshots: docs/screenshots)")


@pytest.fixture(scope="session")
def screenshots_dir(request) -> Path | None:
    """Where browser tests keep screenshots, or None (not asked for)."""
    d = request.config.getoption("--screenshots-dir")
    return Path(d) if d else None


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("livemetrics")


@pytest.fixture(scope="session")
def kafka(session_tmp) -> str:
    """Bootstrap address of a real broker for the whole test session."""
    with services.kafka_bootstrap(session_tmp) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def clickhouse_dsn(session_tmp) -> str:
    with services.clickhouse_dsn(session_tmp) as dsn:
        yield dsn


@pytest.fixture
def make_settings(kafka, clickhouse_dsn, tmp_path):
    """Settings for one test: its own topics, Faust app id, ClickHouse database and data dir."""

    def make(**overrides) -> Settings:
        tag = uuid.uuid4().hex[:10]
        values = dict(
            data_dir=tmp_path / "data",
            kafka_bootstrap=kafka,
            topic_prefix=f"t{tag}.",
            app_id=f"lm-{tag}",
            clickhouse_dsn=clickhouse_dsn,
            clickhouse_database=f"lm_{tag}",
            store="memory://",
            admin_token="admin-" + tag,
            sink_group=f"sink-{tag}",
            delivery_timeout_ms=5000,
            partitions=3,
        )
        values.update(overrides)
        s = Settings(**values)
        create_topics(s)
        return s

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def add_seller():
    """Create a seller's browser key and read token in Kafka; returns (browser_key, token)."""

    def add(s: Settings, seller_id: str, **token_extra) -> tuple[str, str]:
        browser, brec = keys.new_key("pk", seller_id, label="browser")
        token, trec = keys.new_key("st", seller_id, label="dashboard", **token_extra)
        keys.publish(s, brec)
        keys.publish(s, trec)
        return browser, token

    return add
