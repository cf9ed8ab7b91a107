"""The contract's patterns match whole values: Python's `$` (msgspec's engine) also matches before a final
newline, so "EUR\\n", "shoes\\n" or "card\\n" passed and a category could look like another. Each field
with a pattern refuses its value with a line break at the end (both decode paths of the gateway), and a
JavaScript reader of the OpenAPI document reads each pattern as Python does."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from livemetrics import contract
from livemetrics.validation import Rejection, clean_batch, parse_event
from tests.support import factories as f
from tests.support import tracker_js

PATTERNS = [
    contract.SLUG_PATTERN,
    contract.CURRENCY_PATTERN,
    contract.METHOD_PATTERN,
    contract.EMAIL_PATTERN,
    contract.PHONE_PATTERN,
]
# field -> an event with a valid value there, made from the value
FIELDS = {
    "category": lambda v: f.page_view("category", category=v),
    "offer_id": lambda v: f.page_view("offer", offer_id=v),
    "currency": lambda v: f.payment_failed(payment_overrides={"currency": v}),
    "method": lambda v: f.payment_failed(payment_overrides={"method": v}),
    "email": lambda v: f.payment_failed(customer=f.customer(email=v)),
    "phone": lambda v: f.payment_failed(customer=f.customer(phone=v)),
}
VALID = {
    "category": "shoes",
    "offer_id": "summer-sale.2",
    "currency": "EUR",
    "method": "card",
    "email": "ada@example.com",
    "phone": "+44 20 7946 0958",
}


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\n\n"])
def test_a_value_with_a_line_break_at_the_end_is_refused(field, ending):
    good, bad = FIELDS[field](VALID[field]), FIELDS[field](VALID[field] + ending)
    assert not isinstance(parse_event(json.dumps(good).encode(), 0), Rejection)
    rejection = parse_event(json.dumps(bad).encode(), 0)
    assert isinstance(rejection, Rejection) and "matching regex" in rejection.error, rejection
    assert clean_batch(json.dumps({"events": [bad]}).encode()) is None  # the fast path leaves it to the exact one


SAMPLES = ["EUR", "EUR\n", "shoes", "shoes\n", "a@b.c", "a@b.c\n", "+44 20 7946 0958", "+44 20\n", "card_2", "", "\n"]
# every character Python's \s takes (str.isspace), and U+FEFF, which JavaScript's \s takes and Python's does not:
# schemathesis found an email with U+0085 and U+001F valid by the OpenAPI document and refused by the gateway
SAMPLES += [f"a{c}@b.c" for c in [chr(i) for i in range(0x110000) if chr(i).isspace()] + ["\ufeff"]]


def test_javascript_reads_every_pattern_as_python_does():
    script = (
        f"const ps = {json.dumps(PATTERNS)}, xs = {json.dumps(SAMPLES)};"
        "console.log(JSON.stringify(ps.map((p) => xs.map((x) => new RegExp(p, 'u').test(x)))))"
    )
    out = subprocess.run([tracker_js.tool("node"), "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [[re.search(p, x) is not None for x in SAMPLES] for p in PATTERNS]
