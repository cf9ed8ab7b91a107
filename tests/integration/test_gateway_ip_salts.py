"""The IP-hash salt on a real broker (docs/security.md): gateway processes agree on each day's random
salt through the ``ip-salts`` topic, a new day gets a new one, and days before yesterday are tombstoned
on a topic whose settings let the log cleaner remove them: with the same settings scaled from an hour
to half a second, the broker is seen removing an old salt (docs/security.md, Client IP hashes)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from livemetrics.contract import decode
from livemetrics.kafka_config import admin_config
from livemetrics.keys import KeyRegistry
from livemetrics.topics import ip_salts_config
from producers.gateway.app import create_gateway
from producers.gateway.enrich import ip_hash
from producers.gateway.ip_salts import DAY_MS, SharedSalts, day_name
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.kafka_write import writer
from tests.support.manual_clock import ManualClock
from tests.support.servers import ThreadServer, wait_until
from tests.support.topic_changes import add_partitions, watched

pytestmark = pytest.mark.integration
IP = "203.0.113.9"
ORIGIN = "https://shop.test"  # the page origin the test sellers' browser keys allow (tests/support/factories.py)


def _start_together(*salts: SharedSalts) -> None:
    """Started at once, so that both may find no salt and write one: the earliest must win for both."""
    threads = [threading.Thread(target=s.start) for s in salts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


def test_processes_agree_on_each_days_random_salt_and_old_days_are_tombstoned(settings):
    clock = ManualClock(time.time())
    day0 = int(clock() * 1000) // DAY_MS
    a, b = (SharedSalts(settings, clock=clock, tend_interval_s=0.1) for _ in range(2))
    _start_together(a, b)
    try:
        assert a.ready and b.ready
        assert a.salt_of(day0) == b.salt_of(day0) is not None
        now_ms = int(clock() * 1000)
        assert ip_hash(IP, a, now_ms) == ip_hash(IP, b, now_ms)
        records = read_topic(settings, "ip-salts", expect=2)  # today's (one or two racing writers) and tomorrow's
        first_today = next(m for m in records if m.key().decode().startswith(day_name(day0) + "/"))
        assert first_today.value() == a.salt_of(day0)  # the earliest record of the day is the one used

        clock.now += 86_400  # the next day: its salt was written a day ahead, by one process for both
        assert a.salt_of(day0 + 1) == b.salt_of(day0 + 1) is not None
        assert a.salt_of(day0 + 1) != a.salt_of(day0)
        later = now_ms + DAY_MS
        assert ip_hash(IP, a, later) == ip_hash(IP, b, later) != ip_hash(IP, a, now_ms)

        clock.now += 2 * 86_400  # day0 and day0 + 1 are now before yesterday: tombstoned, forgotten
        wait_until(
            lambda: all(s.salt_of(d) is None for s in (a, b) for d in (day0, day0 + 1)), 15, what="old salts forgotten"
        )
        wait_until(
            lambda: a.salt_of(day0 + 3) is not None and a.salt_of(day0 + 3) == b.salt_of(day0 + 3),
            15,
            what="the new day's salt",
        )
        salted = {m.key() for m in read_topic(settings, "ip-salts", expect=4) if m.value() is not None}
        tombstones = {m.key() for m in read_topic(settings, "ip-salts", expect=4) if m.value() is None}
        old = {k for k in salted if k.decode()[:10] in (day_name(day0), day_name(day0 + 1))}
        assert old and old <= tombstones  # every old salt has its tombstone
        late = SharedSalts(settings, clock=clock).start()  # a process started later agrees too
        try:
            assert late.salt_of(day0 + 3) == a.salt_of(day0 + 3) and late.salt_of(day0) is None
        finally:
            late.stop()
    finally:
        a.stop()
        b.stop()


def test_the_salts_topic_lets_the_cleaner_remove_tombstoned_salts(settings):
    topic = settings.topic("ip-salts")
    admin = AdminClient(admin_config(settings))
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(timeout=15)
    md = admin.list_topics(topic, timeout=10).topics[topic]
    assert len(md.partitions) == 1
    for name, value in ip_salts_config().items():
        assert configs[name].value == value, name


def test_the_broker_removes_a_tombstoned_salt(settings):
    """The cleaner really deletes an old salt from the log: the production settings, with a period of half
    a second instead of an hour (then the broker's cleaner pass, every 15 s by default)."""
    s = settings.model_copy(update={"topic_prefix": settings.topic_prefix + "fast."})
    admin = AdminClient(admin_config(s))
    for fut in admin.create_topics([NewTopic(s.topic("ip-salts"), 1, 1, config=ip_salts_config(500))]).values():
        fut.result()
    clock = ManualClock(time.time())
    day0 = int(clock() * 1000) // DAY_MS
    salts = SharedSalts(s, clock=clock, tend_interval_s=0.1).start()
    try:
        assert salts.salt_of(day0) is not None
        for _ in range(4):  # three days on: day0 is tombstoned; each new day appends and rolls a segment
            time.sleep(1)  # the broker's segment.ms (500 ms) passes, so each day's salt lands in a new segment
            clock.now += 86_400
        wait_until(lambda: salts.salt_of(day0) is None, 15, what="the old salt forgotten by the process")

        def salt_gone_from_the_log():
            records = read_topic(s, "ip-salts", expect=1, timeout=10)
            return not [m for m in records if m.key().decode()[:10] == day_name(day0) and m.value() is not None]

        wait_until(salt_gone_from_the_log, 120, interval=2, what="the broker's cleaner removing the old salt")
    finally:
        salts.stop()


def test_two_gateways_hash_one_client_ip_alike(settings, add_seller):
    browser, token = add_seller(settings, "salt-shop")
    registry = KeyRegistry(settings).start()
    wait_until(lambda: registry.record(token.split("_")[2]) is not None, 15, what="keys loaded")
    gateways = [ThreadServer(create_gateway(settings, registry)).start() for _ in range(2)]
    try:
        for gw in gateways:
            wait_until(lambda: httpx.get(f"{gw.url}/readyz").status_code == 200, 15, what="gateway ready")
            r = httpx.post(
                f"{gw.url}/v1/events",
                json=f.page_view(),
                timeout=15,
                headers={"Authorization": f"Bearer {browser}", "User-Agent": f.CHROME, "Origin": ORIGIN},
            )
            assert r.status_code == 202, r.text
        events = [decode(m.value()) for m in read_topic(settings, "page-events", expect=2)]
        assert len(events) == 2 and events[0].ip_hash and events[0].ip_hash == events[1].ip_hash
    finally:
        for gw in gateways:
            gw.stop()
        registry.stop()


def test_records_that_are_no_salt_are_skipped_and_the_salts_after_them_used(settings):
    # ip-salts is written by gateways only (ACLs in secure mode), but a record with a key that is not UTF-8 or
    # names no day (an operator's tool, another version) ended the reader's thread: no salt of a
    # new day was ever known again and every gateway waiting for one stayed unready.
    p = writer(settings)
    topic = settings.topic("ip-salts")
    errors = []
    for key in (b"\xff\xfe/x", b"not-a-day/x", b"2026-02-30/x", b"2026-01-01"):  # (a compacted topic refuses none)
        p.produce(topic, key=key, value=b"x" * 32, on_delivery=lambda err, _m: errors.append(err))
    assert p.flush(30) == 0 and errors == [None] * 4, errors
    clock = ManualClock(time.time())
    day0 = int(clock() * 1000) // DAY_MS
    a = SharedSalts(settings, clock=clock, tend_interval_s=0.1).start()
    try:
        assert a.ready and a.salt_of(day0) is not None
        clock.now += 86_400
        wait_until(lambda: a.salt_of(day0 + 1) is not None, 15, what="the next day's salt")
        assert a._thread is not None and a._thread.is_alive()
    finally:
        a.stop()


def test_partitions_added_to_the_salts_topic_are_read_and_salts_stay_on_the_first(make_settings):
    # The reader read partition 0 only (the topic is created with one): a salt placed by its key on a partition
    # added later was never seen. Now every partition, new ones within reader_topic_check_s; and the salts this
    # version writes all go to partition 0, where the first of a day is the same for every reader.
    from producers.gateway.ip_salts import SALT_BYTES

    s, admin = watched(make_settings)  # admin: kept alive to the end
    topic = s.topic("ip-salts")
    clock = ManualClock(time.time())
    day0 = int(clock() * 1000) // DAY_MS
    a = SharedSalts(s, clock=clock, tend_interval_s=0.1).start()
    try:
        assert a.ready
        add_partitions(admin, topic, 3)
        # The broker's metadata can lag the controller: a produce to a partition it does not list yet fails with
        # UNKNOWN_PARTITION after flush() (seen in CI at load ~10), so wait until it lists the new ones.
        wait_until(
            lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3, 30, what="3 partitions"
        )
        p = writer(s)
        salt = b"s" * SALT_BYTES
        delivered: list = []
        p.produce(
            topic,
            key=f"{day_name(day0 + 5)}/another".encode(),
            value=salt,
            partition=2,
            on_delivery=lambda err, _m: delivered.append(err),
        )
        assert p.flush(30) == 0 and delivered == [None], delivered
        wait_until(lambda: a.salt_of(day0 + 5) == salt, 30, what="the salt on the added partition read")
        clock.now += 86_400  # tomorrow's salt exists; the day after's is written now
        wait_until(lambda: a.salt_of(day0 + 2) is not None, 15, what="a new day's salt")
        written = [m for m in read_topic(s, "ip-salts", expect=4) if m.key().decode().startswith(day_name(day0 + 2))]
        assert written and {m.partition() for m in written} == {0}
        assert a._thread is not None and a._thread.is_alive()
    finally:
        a.stop()
