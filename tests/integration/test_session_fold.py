"""The sink's process folds session rows in the background (clickhouse/session_fold.py): with the real
sink, Kafka and ClickHouse, every stored session ends up in session_sums exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from confluent_kafka import Producer

from clickhouse import query
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from livemetrics.contract import TOPIC_FOR_TYPE, encode
from livemetrics.kafka_config import producer_config
from tests.support.servers import wait_until
from tests.unit.clickhouse import oracle

pytestmark = pytest.mark.integration


def test_the_sink_keeps_session_sums_folded(make_settings):
    # small batches and frequent folds: steps run while the sink is inserting
    settings = make_settings(sink_batch_rows=100, session_fold_interval_s=0.5, session_fold_grace_s=1)
    migrate(settings)
    events = oracle.generate(3, ("s-one", "s-two"), datetime.now(timezone.utc) - timedelta(days=2), days=2,
                             sessions_per_seller=60)
    sessions = {(e.seller_id, e.session_id) for e in events if not e.is_bot}
    p = Producer(producer_config(settings))
    for e in events:
        p.produce(settings.topic(TOPIC_FOR_TYPE[e.type]), key=e.session_id.encode(), value=encode(e))
    assert p.flush(30) == 0
    db = settings.clickhouse_database
    c = get_client(settings)
    sink = EventSink(settings).start()
    try:
        wait_until(lambda: c.query(f"SELECT count() FROM {db}.events").result_rows[0][0] == len(events), 60,
                   interval=0.2, what="all events in ClickHouse")
        (last,), = c.query(f"SELECT toUInt32(max(inserted)) FROM {db}.session_updates").result_rows
        wait_until(lambda: query.folded_to(settings) > last, 40, interval=0.5, what="the fold past the last insert")
        # one furthest step per session, each session once: the deltas of all the steps add up
        per_seller = dict(c.query(f"SELECT seller_id, sum(sessions) FROM {db}.session_sums "
                                  "WHERE kind = 'furthest' GROUP BY seller_id").result_rows)
        assert per_seller == {s: sum(1 for seller, _ in sessions if seller == s) for s in ("s-one", "s-two")}
    finally:
        sink.stop()
    assert not sink.folder._thread.is_alive()  # stopped with the sink
