"""The IP hash's daily salt is random (docs/security.md): the hash no longer follows from (secret, date),
so whoever has the secret cannot recompute a past day's hashes from IP addresses. The
(secret, date)-keyed hash it replaces is spelt out below as ``old_hash``; this file fails against it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from producers.gateway.enrich import ip_hash
from producers.gateway.ip_salts import DAY_MS, LocalSalts, day_name, day_number, hash_key

IP = "203.0.113.9"
MIDNIGHT = 1_795_478_400_000  # a UTC midnight


def old_hash(ip: str, secret: str, now_ms: int) -> str:
    """The former derivation: salt = HMAC(secret, date)."""
    day = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
    salt = hmac.new(secret.encode(), day.encode(), hashlib.sha256).digest()
    return hashlib.blake2b(ip.encode(), key=salt[:32], digest_size=12).hexdigest()


def test_the_same_secret_and_date_give_different_hashes_in_two_salt_sources():
    a, b = LocalSalts("s3cret"), LocalSalts("s3cret")
    assert ip_hash(IP, a, MIDNIGHT) != ip_hash(IP, b, MIDNIGHT)
    assert ip_hash(IP, a, MIDNIGHT) != old_hash(IP, "s3cret", MIDNIGHT)  # not recomputable from the secret


def test_one_day_hashes_alike_and_the_next_day_differently():
    salts = LocalSalts("s3cret")
    day = [ip_hash(IP, salts, t) for t in (MIDNIGHT, MIDNIGHT + 1, MIDNIGHT + DAY_MS - 1)]
    assert len(set(day)) == 1
    assert ip_hash(IP, salts, MIDNIGHT + DAY_MS) != day[0]
    assert ip_hash("198.51.100.7", salts, MIDNIGHT) != day[0]
    assert ip_hash(None, salts, MIDNIGHT) == "" and ip_hash("", salts, MIDNIGHT) == ""


def test_local_salts_forget_days_before_yesterday():
    salts = LocalSalts()
    first = salts.day_key(100)
    salts.day_key(101)
    assert salts.day_key(100) == first  # yesterday is still known
    salts.day_key(102)
    assert salts.day_key(100) != first  # gone: a new random salt, the old hashes cannot be recomputed


def test_the_hash_key_needs_both_the_salt_and_the_secret():
    salt = bytes(32)
    assert hash_key("a", salt) != hash_key("b", salt) and hash_key("a", salt) != hash_key("a", bytes([1]) * 32)


@given(st.integers(min_value=0, max_value=2_932_896))  # up to 9999-12-31
def test_day_names_and_numbers_round_trip(day):
    assert day_number(day_name(day)) == day
