"""What the real sink stores of events a card-data test sent: exactly the accepted ones, and no card
number in any column."""

from __future__ import annotations

from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from tests.support.servers import wait_until


def assert_stored_without_cards(settings, accepted: list[str], posted: list[str]) -> None:
    """Run the sink until the ``accepted`` event ids are in ClickHouse; then every stored row is one of them
    and no digits of ``posted`` appear in any stored value (spaces, dashes and dots ignored)."""
    migrate(settings)
    sink = EventSink(settings).start()
    client = get_client(settings)
    db = settings.clickhouse_database
    try:
        wait_until(
            lambda: client.query(f"SELECT count() FROM {db}.events").result_rows[0][0] >= len(accepted),
            60,
            what="the accepted events stored",
        )
    finally:
        sink.stop()
    rows = client.query(f"SELECT * FROM {db}.events").result_rows
    assert sorted(str(r[0]) for r in rows) == sorted(accepted)
    stored = repr(rows).replace(" ", "").replace("-", "").replace(".", "")
    assert not [d for d in posted if d in stored]
