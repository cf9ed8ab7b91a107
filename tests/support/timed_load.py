"""Storefront load that also records when each request was sent and answered, and which events were
posted more than once (their batch was refused at least once and retried with the same body)."""

from __future__ import annotations

import threading
import time

import httpx

from tests.support.outage_load import Storefront


class _Recording:
    """An httpx client that logs (sent, answered, status) of every POST."""

    def __init__(self, client: httpx.Client, log: list, lock: threading.Lock):
        self.client, self.log, self.lock = client, log, lock

    def post(self, *args, **kwargs) -> httpx.Response:
        sent = time.monotonic()
        try:
            r = self.client.post(*args, **kwargs)
        except httpx.HTTPError:
            with self.lock:
                self.log.append((sent, time.monotonic(), "network"))
            raise
        with self.lock:
            self.log.append((sent, time.monotonic(), r.status_code))
        return r


class TimedStorefront(Storefront):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[tuple[float, float, int | str]] = []
        self.retried: set[str] = set()  # event ids posted in more than one request

    def _post_until_acked(self, client, events) -> None:
        before = len(self.log)
        super()._post_until_acked(_Recording(client, self.log, self.lock), events)
        if len(self.log) - before > 1:
            with self.lock:
                self.retried.update(e["event_id"] for e in events)

    def answers(self) -> list[tuple[float, float, int | str]]:
        with self.lock:
            return list(self.log)
