"""What ``Client`` and ``AsyncClient`` share: the key, the headers, and the retry loop as a generator
that asks its driver to post or to sleep (so the sync and async clients differ only in I/O)."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import httpx

from livemetrics_sdk import __version__
from livemetrics_sdk.events import Event
from livemetrics_sdk.signing import auth_headers, parse_key
from livemetrics_sdk.wire import Batch, SendResult, complete, error_text, outcome, pack, parse_retry_after, retry_delay


@dataclass
class Post:
    body: bytes
    headers: dict[str, str]
    timeout: float


# The driver sends back an httpx.Response, or the httpx.HTTPError the post raised; a float is a sleep.
Exchange = Generator[Union[Post, float], Union[httpx.Response, httpx.HTTPError, None], SendResult]


class BaseClient:
    def __init__(
        self,
        url: str,
        key: str,
        timeout: float = 2.0,
        *,
        backfill: bool = False,
        max_retries: int = 4,
        origin: Optional[str] = None,
        user_agent: Optional[str] = None,
    ):
        """``timeout``: seconds any one call may take in all, retries included. ``origin``: the page origin a
        browser key is allowed from (the gateway refuses a browser key from any other)."""
        self._key = parse_key(key)
        if backfill and self._key.kind != "sk":
            raise ValueError("backfill needs a server key (lm_sk_...): the gateway refuses it from a browser key")
        if timeout <= 0 or max_retries < 0:
            raise ValueError("timeout must be > 0 and max_retries >= 0")
        self.endpoint = url.rstrip("/") + "/v1/events"
        self.timeout = timeout
        self.backfill = backfill
        self.max_retries = max_retries
        self._fixed = {"Content-Type": "application/json", "User-Agent": user_agent or f"livemetrics-sdk/{__version__}"}
        if origin:
            self._fixed["Origin"] = origin
        self._pending: list[dict[str, Any]] = []

    def add(self, event: Union[Event, dict[str, Any]]) -> None:
        """Queue an event (its ``event_id`` and ``ts`` filled in now) for the next ``flush()``."""
        if not isinstance(event, dict):
            raise ValueError(f"an event is a dict, not a {type(event).__name__}")
        self._pending.append(complete(event))  # type: ignore[arg-type]

    def _take_pending(self) -> list[dict[str, Any]]:
        pending, self._pending = self._pending, []
        return pending

    def _prepare(self, events: Sequence[Any], backfill: Optional[bool]) -> tuple[list[Batch], SendResult, bool, float]:
        backfill = self.backfill if backfill is None else backfill
        if backfill and self._key.kind != "sk":
            raise ValueError("backfill needs a server key (lm_sk_...): the gateway refuses it from a browser key")
        for e in events:
            if isinstance(e, dict):
                complete(e)
        batches, refused = pack(events)
        return batches, SendResult(rejected=refused), backfill, time.monotonic() + self.timeout

    def _exchange(self, batch: Batch, backfill: bool, deadline: float) -> Exchange:
        n, attempts, error = len(batch.indexes), 0, ""
        for attempt in range(self.max_retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            headers = {**self._fixed, **auth_headers(self._key, batch.body, backfill)}
            if backfill:
                headers["X-Livemetrics-Backfill"] = "1"
            attempts += 1
            got = yield Post(batch.body, headers, left)
            retry_after = None
            if isinstance(got, httpx.Response):
                result = outcome(got, n)  # raises KeyRefused / GatewayError: no retry can help
                if result is not None:
                    result.attempts = attempts
                    return result
                error = f"{got.status_code}: {error_text(got)}"
                retry_after = parse_retry_after(got.headers.get("Retry-After"))
            else:
                error = f"{type(got).__name__}: {got}".rstrip(": ")
            if attempt == self.max_retries:
                break
            delay = retry_delay(attempt, retry_after)
            if delay >= deadline - time.monotonic():
                error += f" (no retry: the next one would be past the call's timeout of {self.timeout} s)"
                break
            yield delay
        return SendResult(
            failed=n, attempts=attempts, error=error or f"no answer within the call's timeout of {self.timeout} s"
        )
