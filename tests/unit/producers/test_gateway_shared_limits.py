"""The gateway's rate-limit buckets and signatures seen, shared by its processes (producers/gateway/auth.py,
SharedState; livemetrics/shared_table.py). The real gateway of two processes:
tests/integration/test_gateway_workers_shared.py."""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import signal
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import keys
from livemetrics.contract import MAX_BATCH
from livemetrics.once_per import OncePer
from livemetrics.shared_table import SharedTable
from producers.gateway import auth
from producers.gateway.auth import Authenticator, AuthError, RateLimiter, SharedState
from producers.gateway.client_limit import ClientLimiter

OPS = st.lists(
    st.tuples(
        st.sampled_from(["take", "charge", "room"]),
        st.sampled_from(["k1", "k2", "k3", "k4"]),
        st.integers(1, MAX_BATCH),  # events (a request's cost is at most MAX_BATCH)
        st.floats(0, 30, allow_nan=False),  # seconds since the last call
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_shared_buckets_answer_exactly_as_a_process_own(ops):
    """Freed slots included: a bucket full again frees its slot, and a new one answers as it would have."""
    own, shared = RateLimiter(20), RateLimiter(20, shared=SharedTable(16, 3))
    now = 1000.0
    rates = {"k1": 0, "k2": 5, "k3": 50, "k4": 0}  # a key's own rate, or 0: the default
    for op, key, n, dt in ops:
        now += dt
        rate = rates[key]
        if op == "take":
            assert shared.take(key, rate, n, now) == own.take(key, rate, n, now)
        elif op == "charge":
            shared.charge(key, rate, n, now)
            own.charge(key, rate, n, now)
        else:
            assert abs(shared.room(key, rate, now) - own.room(key, rate, now)) < 1e-6
    assert not shared._buckets  # everything fitted in the shared table


def test_two_processes_limiters_spend_one_bucket(monkeypatch):
    monkeypatch.setattr(auth, "SHARED", SharedState(signature_slots=64, bucket_slots=64))  # as workers.py sets it
    a, b = RateLimiter(10), RateLimiter(10)
    assert a.take("key", 0, 20, 100.0) == 0
    assert b.take("key", 0, 20, 100.0) == 2  # the burst was spent on the other process
    ca, cb = ClientLimiter(5), ClientLimiter(5)
    assert ca.take("2001:db8::1", 10, 100.0) == 0 and cb.take("2001:db8::2", 1, 100.0) == 1  # one /64
    assert a.take("2001:db8::/64", 0, 20, 100.0) == 0  # keys and client IPs never share a bucket


def test_a_full_table_falls_back_to_the_process_own_buckets_and_says_so(caplog, monkeypatch):
    monkeypatch.setattr(auth, "_full_said", OncePer(60, lambda: 0.0))
    limiter = RateLimiter(10, shared=SharedTable(2, 3))
    now = 100.0
    with caplog.at_level(logging.WARNING, logger="livemetrics.gateway"):
        for key in ("a", "b", "c", "d"):
            assert limiter.take(key, 0, 20, now) == 0
            assert limiter.take(key, 0, 1, now) == 1  # limited all the same
    assert set(limiter._buckets) == {"c", "d"}
    lines = [r.getMessage() for r in caplog.records if "shared rate-limit table has no room" in r.getMessage()]
    assert len(lines) == 1, lines


def _signed_request(key: str, n: int = 0) -> tuple[dict[str, str], bytes]:
    body = b'{"event_type": "page_view", "n": %d}' % n
    _, key_id, secret = keys.split_key(key)
    ts = f"{time.time():.3f}"
    headers = {auth.KEY_ID: key_id, auth.TIMESTAMP: ts, auth.SIGNATURE: keys.sign(secret, ts, body, False)}
    return headers, body


class _Registry:
    def __init__(self, rec, secret):
        self.found = (rec, secret)

    def server_secret(self, key_id):
        return self.found if key_id == self.found[0].key_id else None


def test_a_signed_request_is_accepted_once_by_the_gateway_not_once_per_process(monkeypatch):
    key, rec = keys.new_key("sk", "shop")
    registry = _Registry(rec, keys.split_key(key)[2])
    monkeypatch.setattr(auth, "SHARED", SharedState(signature_slots=64))
    first, other = (Authenticator(registry, tolerance_s=300) for _ in range(2))  # type: ignore[arg-type]
    headers, body = _signed_request(key)
    assert first.caller(headers, {}, body).record == rec
    try:
        other.caller(headers, {}, body)
        raise AssertionError("the replay to the other process was accepted")
    except AuthError as exc:
        assert exc.status == 401 and "replayed signature" in str(exc)
    fresh, body = _signed_request(key, 1)
    assert other.caller(fresh, {}, body).record == rec  # a new signature is not one


def test_a_signature_past_its_window_frees_its_slot(monkeypatch):
    monkeypatch.setattr(auth, "SHARED", SharedState(signature_slots=1))
    gate = Authenticator(None, tolerance_s=300)  # type: ignore[arg-type]
    assert gate._first_in_gateway(b"one", 1000.0) and not gate._first_in_gateway(b"one", 1599.0)
    assert gate._first_in_gateway(b"two", 1599.0)  # its one slot busy: the process's own cache decided
    assert gate._first_in_gateway(b"two", 1600.0) and not gate._first_in_gateway(b"two", 1601.0)


def _hold_the_lock(table: SharedTable, held) -> None:
    table.lock()
    held.set()
    time.sleep(600)  # killed here, inside the lock


def test_a_process_killed_while_holding_the_lock_does_not_stop_the_others():
    ctx = multiprocessing.get_context("spawn")
    table = SharedTable(8, 3)
    held = ctx.Event()
    child = ctx.Process(target=_hold_the_lock, args=(table, held))
    child.start()
    try:
        assert held.wait(30)
        with pytest.raises(OSError):  # held by the child
            fcntl.flock(table.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        child.kill()
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
        fcntl.flock(table.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the kernel dropped the dead child's lock
        fcntl.flock(table.fd, fcntl.LOCK_UN)
        limiter = RateLimiter(10, shared=table)
        assert limiter.take("key", 0, 20, 1.0) == 0 and not limiter._buckets
    finally:
        if child.is_alive():
            child.kill()


def test_without_shared_memory_the_gateway_still_starts_and_each_process_limits_alone(monkeypatch, caplog):
    from producers.gateway import workers

    def refused(*_a, **_k):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "memfd_create", refused)
    with caplog.at_level(logging.WARNING, logger="livemetrics.gateway"):
        assert workers._shared_state() is None
    assert "no shared rate limits or replay check" in caplog.text


def test_one_key_flooding_the_shared_signatures_fills_only_its_share(monkeypatch):
    """Past its share, a key's signatures are checked by each process alone: the table keeps room for the
    other keys, whose replays to another process are still refused."""
    flood_key, flood_rec = keys.new_key("sk", "flood")
    key, rec = keys.new_key("sk", "shop")

    class Registry:
        def server_secret(self, key_id):
            for k, r in ((flood_key, flood_rec), (key, rec)):
                if key_id == r.key_id:
                    return r, keys.split_key(k)[2]
            return None

    state = SharedState(signature_slots=4096, processes=2)
    assert state.key_share == 1000  # the floor: 4096 // 16 is less
    monkeypatch.setattr(auth, "SHARED", state)
    monkeypatch.setattr(auth, "_full_said", OncePer(60, lambda: 0.0))
    first, other = (Authenticator(Registry(), tolerance_s=300) for _ in range(2))  # type: ignore[arg-type]
    for i in range(5000):  # more than the whole table holds
        headers, body = _signed_request(flood_key, i)
        first.caller(headers, {}, body)
    used = sum(1 for off in range(0, 4096 * 24, 24) if state.signatures.memory[off : off + 16] != bytes(16))
    assert used == state.key_share  # its share, then its own process only
    headers, body = _signed_request(key)
    assert first.caller(headers, {}, body).record == rec
    try:
        other.caller(headers, {}, body)
        raise AssertionError("the other seller's replay to the other process was accepted")
    except AuthError as exc:
        assert exc.status == 401 and "replayed signature" in str(exc)
