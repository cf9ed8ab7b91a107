"""The sessions fold's CPU shortcuts (eleventh session, #19; BENCHMARKS.md) give what their general forms
give: the lax event decode (``streams/lax_event.py``) the contract's values, ``StateCache.put_all`` and
``Deadlines.push_all`` what one ``put`` / ``push`` after the other leave, ``next_change``'s usual case the
general computation, the order key its f-string. The store's filters and its
background rate limiter are checked on a RocksDB worker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import contract
from livemetrics.contract import Event, Page
from livemetrics.settings import Settings
from streams import lax_event
from streams import state as sm
from streams.deadlines import Deadlines
from streams.state_cache import MISSING, StateCache
from tests.support.fuzz_bodies import valid_events
from tests.support.services import free_port
from tests.unit.streams.test_minute_rates import worker  # noqa: F401 - the fixture: worker modules, memory store


@st.composite
def raw_events(draw) -> bytes:
    """A valid event as it is on a raw topic: a storefront's event with the gateway's stamps."""
    ev = draw(valid_events("shop-1"))
    ev["seller_id"] = "shop-1"
    ts = ev["ts"]
    ev["ts"] = ts if isinstance(ts, int) else contract.epoch_ms(datetime.fromisoformat(ts))
    ev["received_at"] = ev["ts"] + draw(st.integers(0, 10_000))
    stamps = st.sampled_from(
        ["seq", "browser", "os", "device", "ip_hash", "user_agent", "is_bot", "backfill", "source"]
    )
    for key in draw(st.sets(stamps)):
        ev[key] = {"seq": 3, "is_bot": True, "backfill": True, "source": "server"}.get(key, "Mozilla/5.0 x")
    return msgspec.json.encode(ev)


@settings(max_examples=300, deadline=None)
@given(raw_events())
def test_the_lax_decode_gives_the_contracts_event_for_every_valid_event(raw):
    strict = contract.decode(raw)
    lax = lax_event.decode(raw)
    assert msgspec.to_builtins(lax) == msgspec.to_builtins(strict)
    assert [f.name for f in msgspec.structs.fields(lax)] == [f.name for f in msgspec.structs.fields(strict)]
    for name in ("page", "checkout", "payment", "customer"):
        assert (getattr(lax, name) is None) == (getattr(strict, name) is None)
    if strict.checkout is not None:  # amounts stay Decimals (the alerts and the stored cart use them)
        assert type(lax.checkout.total) is type(strict.checkout.total)


def test_the_lax_decode_still_refuses_what_is_not_an_event():
    for raw in (b"{}", b'{"event_id": 1}', b"not json"):
        try:
            lax_event.decode(raw)
        except msgspec.DecodeError:
            continue
        raise AssertionError(raw)
    good = json.loads(contract.encode(Event("e", "page_view", "s", "sess-0001", 1, 2, page=Page(type="home"))))
    long = json.loads(json.dumps(good))
    long["page"]["path"] = "/" + "x" * 2048  # the lengths still hold (they bound a row's size)
    try:
        lax_event.decode(json.dumps(long).encode())
    except msgspec.DecodeError:
        pass
    else:
        raise AssertionError("a path over the contract's length was taken")
    good["page"]["unknown"] = 1  # no unknown field in the nested objects, as in the contract
    try:
        lax_event.decode(json.dumps(good).encode())
    except msgspec.DecodeError:
        return
    raise AssertionError("an unknown page field was taken")


def test_an_event_on_the_topic_with_an_unchecked_value_is_counted_live_as_history_stores_it(worker):  # noqa: F811
    """The sink stores such an event (its struct is lax too, clickhouse/events_read.py); the worker skipped
    it as undecodable before, so live and history disagreed on it."""
    from streams import session_batch
    from streams import session_memory as memory
    from streams.table_keys import sums_key
    from streams.tables import sessions, sessions_changelog

    if sessions_changelog._producer is None:  # its rows go nowhere (a closed port), never to a broker
        sessions_changelog.settings = sessions_changelog.settings.model_copy(
            update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}
        )
    memory.forget()
    sessions.data.data.clear()
    now = int(time.time() * 1000)
    ev = Event(
        "e-1", "page_view", "lax-shop", "sess-0001", now, now, page=Page(type="category", category="Winter Sale")
    )
    msg = SimpleNamespace(topic="raw.page-events", partition=0, offset=0, value=contract.encode(ev))
    try:
        session_batch.write(session_batch.fold([msg]))
        row = json.loads(sessions.data.data[sums_key("lax-shop", 0)])
        assert row["v"] == {"live:category:Winter Sale": 1, "active": 1}
    finally:
        memory.forget()
        sessions.data.data.clear()


ops = st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 6), ops, st.lists(st.integers(0, 12), unique=True, max_size=10))
def test_put_all_leaves_what_one_put_after_the_other_leaves(capacity, before, batch):
    one, many = StateCache(capacity), StateCache(capacity)
    for cache in (one, many):
        for is_get, k in before:
            cache.get(b"%d" % k) if is_get else cache.put(b"%d" % k, b"v%d" % k)
    items = [(b"%d" % k, None if k % 3 == 0 else b"w%d" % k) for k in batch]
    for key, raw in items:
        one.put(key, raw)
    many.put_all(items)
    assert list(one._entries.items()) == list(many._entries.items())
    assert all(many.get(k) in (MISSING, None) or many.get(k) == one.get(k) for k, _ in items)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=3)), max_size=40), st.integers(0, 10**6))
def test_push_all_leaves_what_one_push_after_the_other_leaves(dues, now):
    one, many = Deadlines(), Deadlines()
    for due, key in dues:
        one.push(due, key)
    many.push_all(dues)
    assert one.buckets == many.buckets and sorted(one.heap) == sorted(many.heap)
    assert one.pop_due(now) == many.pop_due(now)


def _next_change_in_general(s: sm.SessionState, now: int, w: sm.Windows) -> int | None:
    """``next_change`` as it was before its shortcut (for states without purchases, failures or visits
    that ended)."""
    if s.last_seen == 0:
        return None
    if s.bot:
        end = s.last_seen + w.timeout_ms + w.recent_ms
        return end if end > now else None
    points = [s.last_seen + w.live_ms, s.last_seen + w.timeout_ms, s.last_seen + w.timeout_ms + w.recent_ms]
    later = [p for p in points if p > now]
    return min(later) if later else None


windows = st.builds(
    sm.Windows, live_ms=st.integers(0, 10**6), timeout_ms=st.integers(0, 10**6), recent_ms=st.integers(0, 10**6)
)


@settings(max_examples=2_000, deadline=None)
@given(windows, st.integers(0, 3 * 10**6), st.integers(0, 3 * 10**6), st.booleans())
def test_next_change_of_a_session_with_only_its_visit_is_the_general_one(w, last_seen, now, bot):
    s = sm.SessionState(seller="s", last_seen=last_seen, first_seen=min(last_seen, 5), bot=bot)
    assert sm.next_change(s, now, w) == _next_change_in_general(s, now, w)


@given(st.integers(-(10**16), 10**16), st.integers(-(10**6), 10**6), st.text(max_size=40))
def test_the_order_key_is_the_fixed_width_f_string(ts, seq, event_id):
    ev = SimpleNamespace(ts=ts, seq=seq, event_id=event_id)
    assert sm._order(ev) == f"{ts:015d}|{seq:05d}|{event_id}"  # type: ignore[arg-type]


CHILD = """
from livemetrics.settings import get_settings
from streams import faust_internals
from streams.app import build_worker
build_worker(get_settings())
from streams.tables import sessions
db = faust_internals.partition_db(sessions.data, 0)
print(sessions.data.rocksdb_options.bloom_filter_size, db.path())
"""


@pytest.fixture(scope="module")
def sessions_db_path(tmp_path_factory) -> tuple[str, Path]:
    """(the file filters' bits, the directory of partition 0's database) of the sessions store of a
    RocksDB worker, opened in a child process."""
    env = Settings(store="rocksdb://", data_dir=tmp_path_factory.mktemp("rocksdb-worker")).child_env()
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        cwd=Path(__file__).parents[3],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    bits, path = out.stdout.split()[-2:]
    return bits, Path(path)


def test_the_sessions_store_has_bloom_filters_in_its_files_and_memtables(sessions_db_path):
    """The filters that make a new session's miss cheap (streams/tables.py), as RocksDB opened the
    partition database (its OPTIONS file)."""
    bits, path = sessions_db_path
    assert bits == "10"
    options = max(path.glob("OPTIONS-*")).read_text()
    assert "memtable_whole_key_filtering=true" in options
    assert "memtable_prefix_bloom_size_ratio=0.100000" in options


def test_the_sessions_store_limits_its_background_writes(sessions_db_path):
    """The rate limiter that spreads the store's flushes and compactions over seconds instead of a burst
    beside the worker's main thread (streams/tables.py, BENCHMARKS.md twelfth session), as RocksDB opened
    the partition database: its info LOG names the limiter it was given (the OPTIONS file does not hold
    it; without one the LOG says ``(nil)``)."""
    _, path = sessions_db_path
    log = (path / "LOG").read_text()
    limiter = re.search(r"Options\.rate_limiter: (\S+)", log)
    assert limiter is not None, log[:2000]
    assert limiter.group(1).startswith("0x"), limiter.group(0)
