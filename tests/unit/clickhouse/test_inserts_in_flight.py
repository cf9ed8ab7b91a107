"""The running-inserts record the session fold stays behind (clickhouse/inserts_in_flight.py)."""

from __future__ import annotations

import threading

import pytest

from clickhouse.inserts_in_flight import InsertsInFlight


def test_nothing_running_holds_nothing():
    assert InsertsInFlight().oldest_age_s() == 0.0


def test_the_oldest_running_insert_sets_the_age(monkeypatch):
    clock = iter([100.0, 103.0, 105.0, 106.0, 107.0])
    monkeypatch.setattr("clickhouse.inserts_in_flight.time.monotonic", lambda: next(clock))
    f = InsertsInFlight()
    with f.inserting():  # started at 100
        with f.inserting():  # started at 103
            assert f.oldest_age_s() == 5.0  # read at 105
        assert f.running() == 1
        assert f.oldest_age_s() == 6.0  # read at 106: still the first
    assert f.running() == 0 and f.oldest_age_s() == 0.0


def test_an_insert_that_raises_is_no_longer_running():
    f = InsertsInFlight()
    with pytest.raises(RuntimeError), f.inserting():
        raise RuntimeError("ClickHouse gone")
    assert f.running() == 0


def test_inserts_on_many_threads_all_end():
    f = InsertsInFlight()
    inside = threading.Barrier(8)

    def insert() -> None:
        with f.inserting():
            inside.wait(10)  # all eight running at once

    threads = [threading.Thread(target=insert) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert f.running() == 0
