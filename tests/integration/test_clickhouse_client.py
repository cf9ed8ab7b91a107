"""One ClickHouse client per thread: threads do not wait behind each other's queries, they share the
engine, and the clients of threads that ended are closed."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from clickhouse.client import get_client
from livemetrics.settings import Settings
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def ch(clickhouse_dsn, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, clickhouse_dsn=clickhouse_dsn, clickhouse_database=f"lm_{uuid.uuid4().hex[:10]}")


def in_thread(fn):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_a_thread_keeps_its_client_and_another_thread_gets_its_own_on_the_same_engine(ch):
    mine = get_client(ch)
    assert get_client(ch) is mine
    mine.command(f"CREATE DATABASE {ch.clickhouse_database}")
    mine.command(f"CREATE TABLE {ch.clickhouse_database}.t (x UInt8) ENGINE = MergeTree ORDER BY x")
    mine.command(f"INSERT INTO {ch.clickhouse_database}.t VALUES (7)")
    t, out = in_thread(
        lambda: (get_client(ch), get_client(ch).query(f"SELECT x FROM {ch.clickhouse_database}.t").result_rows)
    )
    t.join(30)
    theirs, rows = out["value"]
    assert theirs is not mine and rows == [(7,)]
    mine.command(f"DROP DATABASE {ch.clickhouse_database}")


def test_a_query_does_not_wait_for_another_threads_long_query(ch):
    started = time.monotonic()
    slow, slow_out = in_thread(
        lambda: (
            get_client(ch).command("SELECT sum(sleepEachRow(0.5)) FROM numbers(4) SETTINGS max_block_size = 1"),
            time.monotonic(),
        )[1]
    )
    # the slow query is running (it takes 2 s): the server lists it
    wait_until(
        lambda: (
            get_client(ch)
            .query(
                "SELECT count() FROM system.processes WHERE query LIKE '%sleepEachRow(0.5)%' AND query NOT LIKE '%system.processes%'"
            )
            .result_rows[0][0]
            == 1
        ),
        10,
        interval=0.01,
        what="the slow query started",
    )
    get_client(ch).command("SELECT 1")
    quick_done = time.monotonic()
    slow.join(30)
    assert "error" not in slow_out, slow_out
    assert slow_out["value"] - started >= 1.9  # it really ran for 2 s
    assert quick_done < slow_out["value"] - 1.0  # and this thread's query did not wait for it


def test_the_client_of_a_thread_that_ended_is_closed_when_the_next_one_is_made(ch):
    t, out = in_thread(lambda: get_client(ch))
    t.join(30)
    gone = out["value"]
    t, out = in_thread(lambda: get_client(ch))
    t.join(30)
    with pytest.raises(Exception, match="closed"):
        gone.command("SELECT 1")
    out["value"].command("SELECT 1")  # the new thread's client, still open after its thread ended


def test_a_client_connecting_to_a_server_that_never_answers_does_not_hold_up_other_threads(ch):
    """Making a client asks the server; a server that accepts and never answers (packets dropped past the
    handshake, a hung ClickHouse) held the module's lock for the client's whole timeout, and every other
    thread making a client (/readyz's) waited behind it."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    hung = ch.model_copy(update={"clickhouse_dsn": f"http://127.0.0.1:{listener.getsockname()[1]}"})
    stuck, stuck_out = in_thread(lambda: get_client(hung))
    try:
        listener.settimeout(10)
        accepted.append(listener.accept()[0])  # the client's request arrived: it now waits for an answer
        other, other_out = in_thread(lambda: get_client(ch).command("SELECT 1"))
        other.join(10)
        assert not other.is_alive(), "a thread making a client waited for another thread's hung connect"
        assert other_out == {"value": 1}, other_out
        assert stuck.is_alive()  # still connecting: the hang was real while the other thread got through
    finally:
        for s in accepted:
            s.close()  # the hung connect now fails (connection reset)
        listener.close()
        stuck.join(30)
    assert "error" in stuck_out and not stuck.is_alive()
