"""``Client`` (sync: Django, Flask) and ``AsyncClient`` (asyncio: FastAPI, aiohttp).

A call sends now and returns a ``SendResult`` within ``timeout`` seconds, retries included; it raises
only ``KeyRefused`` (401/403) or ``GatewayError`` (another 4xx), never for the events themselves: those
the gateway refuses are in ``rejected`` (with its reason), those not confirmed in time in ``failed``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Optional, Union

import httpx

from livemetrics_sdk import build
from livemetrics_sdk.base import BaseClient, Exchange, Post
from livemetrics_sdk.events import Amount, Customer, Event, Item, Page
from livemetrics_sdk.wire import SendResult

Events = Sequence[Union[Event, dict[str, Any]]]


class Client(BaseClient):
    """Synchronous client; one per process is enough (it keeps its connections)."""

    def __init__(
        self,
        url: str,
        key: str,
        timeout: float = 2.0,
        *,
        transport: Optional[httpx.BaseTransport] = None,
        **options: Any,
    ):
        super().__init__(url, key, timeout, **options)
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def send(self, events: Events, backfill: Optional[bool] = None) -> SendResult:
        """Send events now, in as few requests as the gateway's limits allow (500 events, 1 MiB)."""
        batches, total, backfill, deadline = self._prepare(events, backfill)
        for batch in batches:
            total.merge(self._run(self._exchange(batch, backfill, deadline)), batch.indexes)
        return total

    def _run(self, exchange: Exchange) -> SendResult:
        try:
            step = next(exchange)
            while True:
                if isinstance(step, Post):
                    try:
                        got: Any = self._http.post(
                            self.endpoint, content=step.body, headers=step.headers, timeout=step.timeout
                        )
                    except httpx.HTTPError as e:
                        got = e
                    step = exchange.send(got)
                else:
                    time.sleep(step)
                    step = exchange.send(None)
        except StopIteration as done:
            result: SendResult = done.value
            return result

    def flush(self) -> SendResult:
        """Send what ``add()`` queued."""
        pending = self._take_pending()
        return self.send(pending) if pending else SendResult()

    def page_view(self, session_id: str, page: Page, **fields: Any) -> SendResult:
        return self.send([build.page_view(session_id, page, **fields)])

    def checkout_started(
        self, session_id: str, items: list[Item], total: Amount, currency: str, customer: Optional[Customer] = None
    ) -> SendResult:
        return self.send([build.checkout_started(session_id, items, total, currency, customer)])

    def payment_started(self, session_id: str, **payment: Any) -> SendResult:
        return self.send([build.payment("payment_started", session_id, **payment)])

    def payment_succeeded(self, session_id: str, **payment: Any) -> SendResult:
        return self.send([build.payment("payment_succeeded", session_id, **payment)])

    def payment_failed(self, session_id: str, *, error_code: str, **payment: Any) -> SendResult:
        return self.send([build.payment("payment_failed", session_id, error_code=error_code, **payment)])

    def close(self) -> None:
        """Flush what is queued, then close the connections."""
        try:
            self.flush()
        finally:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncClient(BaseClient):
    """asyncio client: the same calls as ``Client``, as coroutines."""

    def __init__(
        self,
        url: str,
        key: str,
        timeout: float = 2.0,
        *,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        **options: Any,
    ):
        super().__init__(url, key, timeout, **options)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def send(self, events: Events, backfill: Optional[bool] = None) -> SendResult:
        """Send events now, in as few requests as the gateway's limits allow (500 events, 1 MiB)."""
        batches, total, backfill, deadline = self._prepare(events, backfill)
        for batch in batches:
            total.merge(await self._run(self._exchange(batch, backfill, deadline)), batch.indexes)
        return total

    async def _run(self, exchange: Exchange) -> SendResult:
        try:
            step = next(exchange)
            while True:
                if isinstance(step, Post):
                    try:
                        got: Any = await self._http.post(
                            self.endpoint, content=step.body, headers=step.headers, timeout=step.timeout
                        )
                    except httpx.HTTPError as e:
                        got = e
                    step = exchange.send(got)
                else:
                    await asyncio.sleep(step)
                    step = exchange.send(None)
        except StopIteration as done:
            result: SendResult = done.value
            return result

    async def flush(self) -> SendResult:
        pending = self._take_pending()
        return await self.send(pending) if pending else SendResult()

    async def page_view(self, session_id: str, page: Page, **fields: Any) -> SendResult:
        return await self.send([build.page_view(session_id, page, **fields)])

    async def checkout_started(
        self, session_id: str, items: list[Item], total: Amount, currency: str, customer: Optional[Customer] = None
    ) -> SendResult:
        return await self.send([build.checkout_started(session_id, items, total, currency, customer)])

    async def payment_started(self, session_id: str, **payment: Any) -> SendResult:
        return await self.send([build.payment("payment_started", session_id, **payment)])

    async def payment_succeeded(self, session_id: str, **payment: Any) -> SendResult:
        return await self.send([build.payment("payment_succeeded", session_id, **payment)])

    async def payment_failed(self, session_id: str, *, error_code: str, **payment: Any) -> SendResult:
        return await self.send([build.payment("payment_failed", session_id, error_code=error_code, **payment)])

    async def aclose(self) -> None:
        try:
            await self.flush()
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
