"""Narrowing a refused batch down, as pure logic: ``insert`` stands for ClickHouse's verdict on a set of
lines (refusing any set that holds a refused value, or more than ``limit`` lines of distinct "months").
Every accepted line stored exactly once, in order, each refused line dead-lettered alone before any line
after it is stored, part tokens from their offsets, transient failures raised. The integration tests
(tests/integration/test_clickhouse_sink_refused.py) do the same against chdb."""

from __future__ import annotations

import json

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from clickhouse.events_unusable import Refused
from clickhouse.sink_batch import Batch
from clickhouse.sink_dead_letter import dead_letter
from clickhouse.sink_narrow import head_position, part_token, store_narrowing

BAD = DatabaseError("Code: 469. DB::Exception: Constraint `no_poison` is violated. (VIOLATED_CONSTRAINT)")
PARTITIONS = DatabaseError("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 3).")


def batch_of(values: list[bytes], partitions: int = 3) -> Batch:
    b = Batch("p.payment-alerts")
    b.add(
        [
            Message(topic="p.page-events", partition=i % partitions, offset=i // partitions, value=v)
            for i, v in enumerate(values)
        ]
    )
    return b


class ClickHouse:
    """Refuses a set of lines holding b"poison", or spanning more than ``limit`` distinct values."""

    def __init__(self, limit: int = 10**9, fail_at: int | None = None):
        self.limit, self.fail_at, self.calls, self.stored, self.tokens = limit, fail_at, 0, [], []
        self.log: list[tuple[str, bytes]] = []  # ("stored" | "dead", value), in the order it happened

    def insert(self, heads, values, token):
        self.calls += 1
        if self.calls == self.fail_at:
            raise OperationalError("Connection refused")
        assert [int(h[1:].split(b",")[0]) for h in heads] == list(range(len(heads)))  # numbered from 0
        if any(b"poison" in v for v in values):
            raise BAD
        if len(set(values)) > self.limit:
            raise PARTITIONS
        assert token not in self.tokens, "a token reused for other rows"
        self.tokens.append(token)
        self.stored += values
        self.log += [("stored", v) for v in values]
        return len(values)

    def dead(self, refused: list[Refused]):
        self.log += [("dead", r.value) for r in refused]


@given(st.lists(st.sampled_from([b"a", b"b", b"poison"]), min_size=1, max_size=80))
# no deadline: an example logs a line per refusal (up to 80), which took 300 ms once on a loaded 2-core CI
# run (21 ms when hypothesis ran it again); what the test checks is the order and the dead letters
@settings(max_examples=150, deadline=None)
def test_every_accepted_line_once_in_order_and_every_refused_one_dead_lettered_in_place(values):
    values = [v + b"-%d" % i for i, v in enumerate(values)]
    b = batch_of(values)
    ch = ClickHouse()
    rows = store_narrowing(b.heads, b.values, ch.insert, ch.dead)
    good = [v for v in values if b"poison" not in v]
    assert rows == len(good) and ch.stored == good
    assert [v for _, v in ch.log] == values  # in order: a refused line before any line after it
    assert [v for kind, v in ch.log if kind == "dead"] == [v for v in values if b"poison" in v]


def test_too_many_distinct_values_are_split_until_they_fit_and_nothing_is_dead_lettered():
    values = [b"%d" % i for i in range(40)]
    b = batch_of(values)
    ch = ClickHouse(limit=12)
    assert store_narrowing(b.heads, b.values, ch.insert, ch.dead) == 40
    assert ch.stored == values and all(kind == "stored" for kind, _ in ch.log)


def test_a_transient_failure_in_the_middle_is_raised_and_a_retry_repeats_the_same_parts():
    values = [b"ok-%d" % i for i in range(30)]
    values[7] = values[21] = b"poison"
    b = batch_of(values)
    first = ClickHouse(fail_at=5)
    with pytest.raises(OperationalError):
        store_narrowing(b.heads, b.values, first.insert, first.dead)
    again = ClickHouse()
    store_narrowing(b.heads, b.values, again.insert, again.dead)
    assert first.tokens == again.tokens[: len(first.tokens)]  # the same parts, the same tokens: deduplicated


def test_part_tokens_are_the_batch_token_of_the_same_offsets():
    b = batch_of([b"x"] * 9)
    assert part_token(b.heads, b.values) == b.token()
    assert part_token(b.heads[:4], b.values[:4]) != part_token(b.heads[4:], b.values[4:]) != b.token()
    assert head_position(b.heads[4]) == ("p.page-events", 1, 1)


def test_a_dead_letter_names_its_source_and_the_error_and_adds_no_card_data():
    value = json.dumps(
        {
            "event_id": "e",
            "seller_id": "s1",
            "session_id": "poison-1",
            "payment": {"details": {"note": "4111 1111 1111 1111"}},
        }
    ).encode()
    b = batch_of([value])
    key, body = dead_letter(Refused(b.heads[0], value, "Code: 469. column values: 4111111111111111"))
    doc = json.loads(body)
    assert key == b"p.page-events/0/0"
    assert doc["source"] == {"topic": "p.page-events", "partition": 0, "offset": 0}
    assert doc["reason"] == "clickhouse_refused" and doc["seller_id"] == "s1" and "Code: 469" in doc["error"]
    assert b"4111" not in body
    key, body = dead_letter(Refused(b.heads[0], b"\xff not json", "Code: 27."))
    assert json.loads(body)["event"] == "\ufffd not json" and json.loads(body)["seller_id"] is None


@pytest.mark.parametrize("limit", [400_000, 65_536, 4_096, 600])
def test_a_dead_letter_is_cut_to_a_lower_limit_down_to_its_smallest_form(limit):
    value = b"\x01" * 150_000  # JSON-escaped 900 KB: over every limit
    b = batch_of([value])
    _key, body = dead_letter(Refused(b.heads[0], value, "Code: 27. " + "x" * 5000), limit)
    doc = json.loads(body)
    assert len(body) <= limit and doc["event_truncated"]["bytes"] == len(value)
    assert doc["event"] == "\x01" * len(doc["event"]) and doc["source"]["offset"] == 0
    assert (len(doc["event"]) > 0) == (limit > 1000)  # only the smallest limit leaves no head at all


def test_a_dead_letter_whose_smallest_form_is_over_the_limit_is_that_form():
    b = batch_of([b"\x01" * 10_000])
    _key, body = dead_letter(Refused(b.heads[0], b"\x01" * 10_000, "Code: 27. " + "x" * 5000), 100)
    doc = json.loads(body)
    assert doc["event"] == "" and len(doc["error"]) == 200 and len(body) > 100
