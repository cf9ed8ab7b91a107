"""Is each child of ``livemetrics up`` still answering? A dead child is seen by its exit code; a stopped or
hung one (SIGSTOP, a deadlock, a lost disk) keeps running and is seen only by asking it.

A daemon thread asks every child in turn, every ``PROBE_EVERY_S``, and records when each last answered:
a process with HTTP its ``/healthz`` (any status below 500: it answered, so it runs; a 5xx says it runs
but is stuck, e.g. the worker's event loop, whose /healthz is served from a thread), the broker a Kafka
``ApiVersions`` request (``kafka_answers``: the kernel accepts a connection for a stopped JVM, so a
connect alone proves nothing). ``up``'s main thread reads ``silent_s`` and
kills a child silent for longer than ``hung_child_s``; the restart then follows as for any death
(supervise.py). The probes run on their own thread so that a child that accepts a connection and never
answers (the kernel accepts for a stopped process) does not hold up the supervision of the others.

A child is judged only after it answered once since its start (its readiness check counts): start-up
(migrations, a recovery) has its own wait, and the restart backoff gives a child that keeps failing to
start a death count anyway.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable

import httpx

PROBE_EVERY_S = 2.0
PROBE_TIMEOUT_S = 2.0


class Liveness:
    """The time each child (by name) last answered its health URL, as measured by one probing thread."""

    def __init__(self, children: Callable[[], Iterable], every_s: float = PROBE_EVERY_S):
        self._children = children  # () -> the current children (each: name, answers(), alive(), started_at)
        self._every_s = every_s
        self._answered: dict[str, float] = {}  # name -> monotonic time of its last answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="up-liveness", daemon=True)

    def start(self) -> Liveness:
        """Children already ready answered their readiness check since their start: that counts as an answer,
        so one stopped before this thread's first probe (2 s on) is still judged, not taken as starting."""
        now = time.monotonic()
        for c in self._children():
            if getattr(c, "ready", False) and c.alive():
                self._answered[c.name] = now
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def silent_s(self, child, now: float) -> float:
        """Seconds since ``child`` last answered; 0 when it has not answered since its (re)start."""
        answered = self._answered.get(child.name)
        if answered is None or answered < child.started_at:
            return 0.0
        return now - answered

    def _run(self) -> None:
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
            while not self._stop.wait(self._every_s):
                for c in list(self._children()):
                    if c.alive():
                        asked = time.monotonic()
                        if c.answers(client):
                            self._answered[c.name] = asked


def http_answers(client: httpx.Client, url: str) -> bool:
    """An answer below 500: the process runs; a 5xx is its own word that it is stuck (livemetrics/loop_watch.py)."""
    try:
        return client.get(url).status_code < 500
    except httpx.HTTPError:
        return False


def kafka_answers(host_port: tuple[str, int], timeout: float = PROBE_TIMEOUT_S) -> bool:
    """The broker answers an ``ApiVersions`` (v0) request within ``timeout``; a plaintext or SASL
    listener answers it before any login (KIP-43)."""
    client_id = b"livemetrics-up"
    # header: api_key 18 (ApiVersions), api_version 0, correlation_id, client_id (int16 length + bytes)
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection(host_port, timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = sock.recv(8)  # size, correlation_id
    except OSError:
        return False
    return len(head) == 8 and struct.unpack(">ii", head)[1] == 1
