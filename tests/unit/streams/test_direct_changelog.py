"""``DirectChangelog`` (``streams/changelog.py``) on real Faust tables, RocksDB and memory stores, with a
producer whose broker is a closed port (rows are queued, never delivered): a batch lands in the
partition's local store at once (puts and deletes; on RocksDB nothing in another partition's), and every row is
handed to the producer; with nothing produced a flush returns at once, with rows that cannot go out it
fails. Delivery, persisted offsets and the commit hook need a broker:
``tests/integration/test_fastpath_changelog.py``; the outage tolerance: ``test_changelog_outage.py``."""

from __future__ import annotations

import asyncio

import pytest

from livemetrics.settings import Settings
from streams import faust_internals
from streams.app import create_app
from streams.changelog import ChangelogDeliveryError, DirectChangelog
from tests.support.services import free_port


@pytest.fixture(params=["rocksdb://", "memory://"])
def changelog(request, tmp_path):
    s = Settings(
        store=request.param,
        data_dir=tmp_path,
        app_id="changelog-unit",
        kafka_bootstrap=f"127.0.0.1:{free_port()}",  # nothing answers: rows stay queued
        broker_outage_tolerance_s=30.0,
    )
    table = create_app(s).Table("sessions", key_type=bytes, value_type=bytes, default=None)
    log = DirectChangelog(table, s)
    yield log
    log.close(timeout=0)


def test_a_batch_lands_in_its_partition_store_and_goes_to_the_producer(changelog):
    changelog.write(1, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    changelog.write(1, [(b"a", None), (b"b", b"2b"), (b"gone", None)])  # a delete of a missing key is harmless
    get = changelog.getter(1)
    assert (get(b"a"), get(b"b"), get(b"c")) == (None, b"2b", b"3")
    if faust_internals.partition_db(changelog.table.data, 0) is not None:  # RocksDB: one database per partition
        assert changelog.getter(0)(b"b") is None  # another partition's is untouched (memory: one dict for all)
    # Every row, deletes as tombstones, handed to the producer (and none delivered: nothing answers).
    with pytest.raises(ChangelogDeliveryError, match="^6 changelog rows still in flight"):
        asyncio.run(changelog.flush(timeout=0.2))
    assert changelog.table.changelog_topic_name == "changelog-unit-sessions-changelog"


def test_on_rocksdb_the_rows_are_the_bytes_in_the_partition_database(changelog):
    changelog.write(2, [(b"k", b"v")])
    db = faust_internals.partition_db(changelog.table.data, 2)
    if db is None:  # the memory store: a dict
        assert changelog.table.data.data[b"k"] == b"v"
    else:
        assert db[b"k"] == b"v"


def test_an_empty_batch_creates_no_producer_and_a_flush_returns_at_once(changelog):
    changelog.write(0, [])
    assert changelog.pending() == 0
    asyncio.run(asyncio.wait_for(changelog.flush(), 1.0))


def test_a_flush_with_rows_that_cannot_go_out_fails_after_its_timeout(changelog):
    changelog.write(0, [(b"k", b"v")])

    async def flush() -> None:
        await changelog.flush(timeout=0.3)

    with pytest.raises(ChangelogDeliveryError, match="1 changelog rows still in flight after 0.3 s"):
        asyncio.run(flush())
