"""Free local ports, for what starts throw-away servers: the benchmarks and the tests (which may import
operations; the core and the services never need one).

A port is taken below the kernel's ephemeral range and held for the taking process's whole life by a lock
on a file of its own (released by the kernel when the process ends, however it ends). A port the kernel
picks (binding port 0) is free again as soon as its server stops: a chaos test's broker, SIGKILLed and
brought back on its port 18 s later, could find another test's broker there, and the first stack's clients
would then write to and read from the other's topics (offsets given out again, rows of other sellers).
Below the ephemeral range no outgoing connection takes one either."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path

LOWEST = 20_000
_held: dict[int, int] = {}  # port -> the fd whose lock holds it for this process


def _ephemeral_low() -> int:
    try:  # Linux's ip_local_port_range: bind(0) and outgoing connections take ports from here up
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def claim(port: int) -> bool:
    """Hold ``port`` for this process's life; False when another live process holds it."""
    if port in _held:
        return False  # handed out already
    folder = Path(tempfile.gettempdir()) / "livemetrics-ports"
    folder.mkdir(exist_ok=True)
    fd = os.open(folder / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held[port] = fd
    return True


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(candidates: Iterable[int] | None = None) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and no other process was given (see the module's
    docstring); ``candidates`` (tests) replaces the random picks below the ephemeral range."""
    high = max(LOWEST + 1_000, _ephemeral_low())
    picks = candidates if candidates is not None else (random.randrange(LOWEST, high) for _ in range(5_000))
    for port in picks:
        if claim(port):
            if _bindable(port):
                return port
            os.close(_held.pop(port))  # something outside the tests listens there: leave it
    raise RuntimeError(f"no free port found in {LOWEST}-{high} (every one tried was held or in use)")
