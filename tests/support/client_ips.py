"""Client IPs for gateway tests that send from IPs of their own (X-Forwarded-For from a trusted proxy):
each call a fresh one in this process, never a repeat. A random pick of 250 addresses repeated one
sometimes, and a test whose first request came from an address another test had spent got a 429."""

from __future__ import annotations

import itertools
import threading

_NETS = ("198.51.100", "203.0.113")  # TEST-NET-2 and TEST-NET-3 (RFC 5737)
_next = itertools.count()
_lock = threading.Lock()


def fresh_client_ip() -> str:
    with _lock:
        n = next(_next)
    if n >= 254 * len(_NETS):
        raise RuntimeError("tests used every documentation IPv4 address of this process: add a network")
    return f"{_NETS[n // 254]}.{n % 254 + 1}"
