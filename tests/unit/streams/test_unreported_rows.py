"""The sums rows waiting for their report to the gauges agent (``session_memory.UnreportedRows``): the
latest row of each (seller, partition), all taken at once, none twice."""

from streams.session_memory import UnreportedRows


def test_the_latest_row_of_each_seller_and_partition_is_taken_once():
    rows = UnreportedRows()
    rows.mark("shop-a", 0, b"a0-1")
    rows.mark("shop-a", 1, b"a1-1")
    rows.mark("shop-a", 0, b"a0-2")  # a newer row replaces the one not reported yet
    rows.mark("shop-b", 0, b"b0-1")
    assert len(rows) == 3
    assert sorted(rows.take()) == [("shop-a", 0, b"a0-2"), ("shop-a", 1, b"a1-1"), ("shop-b", 0, b"b0-1")]
    assert len(rows) == 0 and rows.take() == []
    rows.mark("shop-a", 0, b"a0-3")
    assert rows.take() == [("shop-a", 0, b"a0-3")]
