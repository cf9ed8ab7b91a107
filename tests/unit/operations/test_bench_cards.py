"""``livemetrics bench cards`` (operations/bench/cards.py): every hostile shape is one event within the event
limit, and each prints its four figures, the validation's with its same-run ceiling."""

from __future__ import annotations

import json
from types import SimpleNamespace

from livemetrics.card_data import events_to_card_check, might_hold_card_data
from livemetrics.contract import MAX_EVENT_BYTES
from operations.bench import cards


def test_each_shape_is_one_event_just_under_the_limit():
    for name, shape in cards.SHAPES.items():
        raw = cards.largest(shape)
        assert MAX_EVENT_BYTES - 200 < len(raw) <= MAX_EVENT_BYTES, (name, len(raw))


def test_each_shape_prints_its_figures(capsys):
    assert cards.run(SimpleNamespace(duration=0.0)) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_shape: dict[str, dict[str, dict]] = {}
    for row in rows:
        assert row["bench"] == "cards"
        by_shape.setdefault(row["labels"]["shape"], {})[row["metric"]] = row
    assert set(by_shape) == set(cards.SHAPES)
    for name, figures in by_shape.items():
        assert set(figures) == {
            "validation_ms_per_event",
            "counted_events",
            "validation_ms_per_counted_event",
            "key_cpu_s_per_s_at_default_rate",
        }, name
        assert figures["validation_ms_per_event"]["labels"]["ceiling_ms"] > 0
        # a body's digit groups count: every shape counts as far more than its one event, or its 4 KiB units
        assert figures["counted_events"]["value"] > MAX_EVENT_BYTES // 4096, (name, figures["counted_events"])


def test_the_object_shape_is_read_by_the_card_rules_and_holds_no_card():
    """An object of four-digit values: the pre-scan flags its pairs, the raw check reads them all and finds
    no card (four fours, then a fifth: no printed layout), so what it measures is the reading."""
    raw = cards.largest(cards.SHAPES["object_of_fours"])
    assert events_to_card_check([raw]) == [0]
    assert not might_hold_card_data(raw)
    assert json.loads(raw)["payment"]["details"]["x"]["k1"] == "4111"


def test_the_comma_shape_is_read_by_the_text_rules_and_holds_no_card():
    """One-digit groups joined by commas in a string: the pre-scan flags it, the raw check reads the run (no
    printed layout: no card), so what it measures is the reading."""
    raw = cards.largest(cards.SHAPES["one_digit_commas"])
    assert events_to_card_check([raw]) == [0]
    assert not might_hold_card_data(raw)
