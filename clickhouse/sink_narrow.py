"""When ClickHouse refuses a batch for what its rows hold (``sink_errors.REFUSED``): split it in halves,
recursively, store every part ClickHouse accepts and hand each line it refuses on its own to the sink's
dead-letter step, in the order of the lines.

Exactly once, after a crash at any point of it:
- a part's deduplication token is made from its own offset ranges and each range's first value (``part_token``),
  like a batch's, so the
  same batch narrowed again after a retry inserts the same parts with the same tokens (ClickHouse drops
  the copies), and a part never shares a token with other rows;
- parts are stored in line order, which is offset order in every partition, and a refused line is
  dead-lettered before any line after it is stored: the sink resumes after the highest offset stored,
  so nothing before it is read again and nothing after it was skipped.
A refusal of one line where the batch was refused for a transient cause is raised (the caller waits and
retries the batch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from clickhouse.events_unusable import OnRefused, Refused, renumber
from clickhouse.sink_batch import ranges_token
from clickhouse.sink_errors import REFUSED, classify

log = logging.getLogger("livemetrics.sink")

# insert(heads, values, token) -> rows stored; raises what ClickHouse said
Insert = Callable[[list[bytes], list[bytes], str], int]


def head_position(head: bytes) -> tuple[str, int, int]:
    """(topic, partition, offset) of a line's head ``[i,"topic",partition,offset,``."""
    _, topic, partition, offset = head[1:-1].split(b",")
    return topic.strip(b'"').decode(), int(partition), int(offset)


def part_token(heads: list[bytes], values: list[bytes]) -> str:
    """The deduplication token of these lines: ``Batch.token``'s of the same messages (their offset ranges and
    each range's first value), so equal tokens always mean equal rows."""
    ranges: dict[tuple[str, int], list[int]] = {}
    firsts: dict[tuple[str, int], bytes] = {}
    for head, value in zip(heads, values, strict=True):
        t, p, o = head_position(head)
        r = ranges.setdefault((t, p), [o, o])
        if o <= r[0]:
            firsts[(t, p)] = value
        r[0], r[1] = min(r[0], o), max(r[1], o)
    return ranges_token(ranges, firsts)


def store_narrowing(heads: list[bytes], values: list[bytes], insert: Insert, on_refused: OnRefused) -> int:
    """Store these lines in parts, halving every refused part down to single lines (``on_refused``);
    returns the rows stored. Raises the first failure that is not a refusal of the rows."""
    rows, todo, inserts = 0, [(0, len(heads))], 0
    while todo:
        lo, hi = todo.pop()
        part = heads[lo:hi]
        inserts += 1
        try:
            rows += insert(renumber(part), values[lo:hi], part_token(part, values[lo:hi]))
            continue
        except Exception as exc:  # noqa: BLE001 - classified: a transient failure is raised
            if classify(exc) != REFUSED:
                raise
            if hi - lo > 1:
                mid = (lo + hi) // 2
                todo += [(mid, hi), (lo, mid)]  # the first half first: in order
                continue
            log.warning("ClickHouse refused the event at %s: %s", "%s[%d]@%d" % head_position(part[0]), exc)
            on_refused([Refused(part[0], values[lo], str(exc))])
    log.info("sink: a refused batch of %d lines stored in parts (%d inserts, %d rows)", len(heads), inserts, rows)
    return rows
