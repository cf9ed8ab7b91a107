"""The lone surrogate escapes ``split_body`` finds to refuse their events alone (livemetrics/validation.py):
exactly those that make msgspec refuse a string, against msgspec itself on generated strings."""

from __future__ import annotations

import random

import msgspec

from livemetrics.validation import _lone_surrogates, _without_lone_surrogates, split_body

TOKENS = [rb"\ud83d", rb"\ude00", rb"\uDBFF", rb"\uDC00", b"x", rb"\\", rb"\u0041", b"\\\\ud800"]


def test_what_is_found_is_exactly_what_msgspec_refuses():
    rnd = random.Random(1)
    for _ in range(20_000):
        s = b'"' + b"".join(rnd.choice(TOKENS) for _ in range(rnd.randint(0, 8))) + b'"'
        try:
            msgspec.json.decode(s)
            valid = True
        except msgspec.DecodeError:
            valid = False
        at = _lone_surrogates(s)
        assert not (valid and at), s  # nothing found in a string msgspec takes
        msgspec.json.decode(_without_lone_surrogates(s, at))  # and with what is found replaced, it takes it


def test_a_body_with_more_surrogate_escapes_than_the_bound_is_refused_whole():
    body = b'{"events":[{"t":"' + b"\\ud800" * 2001 + b'"}]}'
    try:
        split_body(body)
    except ValueError as exc:
        assert "malformed JSON" in str(exc)
    else:
        raise AssertionError("split")
