"""Each server key has its own replay cache (pure logic; the real gateway: test_gateway_replay_fairness.py)."""

from __future__ import annotations

import pytest

from producers.gateway.auth import _SWEEP_EVERY_S, Authenticator, ReplayCacheFull


def test_a_full_cache_refuses_its_own_key_only_and_idle_keys_are_forgotten():
    auth = Authenticator(registry=None, tolerance_s=300, replay_max=2)  # type: ignore[arg-type]
    a = auth._replay_cache("key-a", 1000.0)
    assert a.first_time(b"a1", 1000.0) and a.first_time(b"a2", 1000.0)
    with pytest.raises(ReplayCacheFull):
        a.first_time(b"a3", 1001.0)
    b = auth._replay_cache("key-b", 1001.0)
    assert b is not a and b.first_time(b"b1", 1001.0) and not b.first_time(b"b1", 1002.0)
    assert auth._replay_cache("key-a", 1002.0) is a and not a.first_time(b"a1", 1002.0)  # still a replay
    # Past the signature window (2 x 300 s) a sweep drops the caches that hold nothing any more.
    later = 1001.0 + 600 + _SWEEP_EVERY_S
    c = auth._replay_cache("key-c", later)
    assert set(auth.replays) == {"key-c"} and c.first_time(b"a1", later)
