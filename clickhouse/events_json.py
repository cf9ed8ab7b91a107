"""Raw-topic messages -> ``events``, parsed by ClickHouse (``queries/sink_events.sql``).

Decoding events into Arrow columns in Python held the GIL for ~6 us per row; here Python only frames
each message value as one JSON line with its Kafka position (``sink_batch``, ~1 us per row) and
ClickHouse parses the lines in the insert itself, with the GIL released. Python decodes no value unless
ClickHouse refuses a batch: then each value is checked (``unusable``), the bad ones are logged and
skipped, and the rest is inserted with the same deduplication token.

Embedded chdb reads the lines from a temporary file (``file()``); a server gets them as the body of
``INSERT ... SELECT ... FROM input()``. Either way one batch is one block (sequential parsing, one read
block), so an insert is all or nothing and a retry of the same batch has the same deduplication token
layout.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import uuid
from importlib import resources
from typing import Any

import msgspec
from clickhouse_connect.driver.exceptions import DatabaseError

from clickhouse.columns import SinkEvent

log = logging.getLogger("livemetrics.sink")

_SQL = resources.files("clickhouse.queries").joinpath("sink_events.sql").read_text()
_INPUT = "FROM input('"  # embedded chdb reads the same lines through file() instead
_END = b"]\n"

# Stated explicitly so that a server with other defaults reads the lines the same way.
JSON_INPUT_SETTINGS: dict[str, Any] = {
    "input_format_parallel_parsing": 0,  # one sequential reader: ordered rows, one block per batch
    "max_block_size": 10_000_000,  # well above any batch: the whole batch is one block
    "max_insert_threads": 1,  # and one part: the same batch always gets the same deduplication blocks
    "input_format_null_as_default": 1,
    "input_format_json_defaults_for_missing_elements_in_named_tuple": 1,
    "input_format_json_ignore_unknown_keys_in_named_tuple": 1,
    "input_format_json_named_tuples_as_objects": 1,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
}


def _quote(v: Any) -> str:
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def insert_events(client, db: str, heads: list[bytes], values: list[bytes], settings: dict[str, Any],
                  embedded: bool) -> None:
    """One ``INSERT ... SELECT`` of these lines (``sink_batch.Batch``) into ``{db}.events``."""
    sql = _SQL.replace("{db}", db).replace("{rows}", str(len(heads)))
    settings = {**JSON_INPUT_SETTINGS, **settings}
    if not embedded:
        body = b"".join(itertools.chain.from_iterable(zip(heads, values, itertools.repeat(_END))))
        client.command(sql + "\nFORMAT JSONCompactEachRow", data=body, settings=settings)
        return
    fd, path = tempfile.mkstemp(prefix="livemetrics-sink-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            write = f.write
            for head, value in zip(heads, values):
                write(head)
                write(value)
                write(_END)
        sql = sql.replace(_INPUT, f"FROM file({_quote(path)}, 'JSONCompactEachRow', '")
        # a SETTINGS clause instead of command(settings=...): chdb would SET and restore each one (~12 ms)
        client.command(sql + "\nSETTINGS " + ", ".join(f"{k} = {_quote(v)}" for k, v in settings.items()))
    finally:
        os.unlink(path)


def insert_skipping_unusable(client, db: str, heads: list[bytes], values: list[bytes], settings: dict[str, Any],
                             embedded: bool) -> int:
    """``insert_events``; if ClickHouse refuses the batch (nothing was written) because some values are
    not events, those are logged and skipped and the rest is inserted with the same settings (token).
    A refusal that no value explains is raised: the sink retries the batch. Returns the rows written."""
    try:
        insert_events(client, db, heads, values, settings, embedded)
        return len(heads)
    except DatabaseError:
        bad = set(unusable(values))
        if not bad:
            raise
    for i in sorted(bad):
        log.warning("undecodable event at %s skipped", position(heads[i]))
    heads = renumber([h for i, h in enumerate(heads) if i not in bad])
    values = [v for i, v in enumerate(values) if i not in bad]
    if heads:
        insert_events(client, db, heads, values, settings, embedded)
    return len(heads)


# --- when ClickHouse refuses a batch (rare): which values are not one event -----------------------
_decoder = msgspec.json.Decoder(SinkEvent)
_INT64 = range(-(1 << 63), 1 << 63)


def position(head: bytes) -> str:
    """``topic[partition]@offset`` of a line, for logs."""
    _, topic, partition, offset = head.decode().strip("[,").split(",")
    return "%s[%s]@%s" % (topic.strip('"'), partition, offset)


def unusable(values: list[bytes]) -> list[int]:
    """Indexes of the values that are not exactly one event (what makes ClickHouse refuse a batch)."""
    bad = []
    for i, value in enumerate(values):
        try:
            e = _decoder.decode(value)
            uuid.UUID(e.event_id)
            if e.ts not in _INT64 or e.received_at not in _INT64:
                raise ValueError("timestamp out of range")
        except (msgspec.DecodeError, ValueError):
            bad.append(i)
    return bad


def renumber(heads: list[bytes]) -> list[bytes]:
    """The same heads numbered from 0 again (after some lines were dropped)."""
    return [b"[%d,%b" % (i, head[head.index(b",") + 1:]) for i, head in enumerate(heads)]
