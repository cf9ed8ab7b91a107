"""Does ClickHouse answer? For /readyz (the API's, the standalone sink's): an answer within ``answer_s``
(2 s), whatever ClickHouse does. Before, /readyz waited on the query itself, so a server that accepts
connections and never answers held it for clickhouse-connect's timeouts (minutes), and every /readyz
asked meanwhile added a thread waiting the same.

One probe thread per process, started on first use, asks ``SELECT 1`` with a client of its own whose
timeouts are a few seconds (``client.probe_client``); a caller waits for the probe under way, or starts the
next one, for at most ``answer_s``, then says ClickHouse does not answer. At most one probe is ever in
flight, however often /readyz is asked: no thread piles up behind a hung server."""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from clickhouse_connect.driver.client import Client

from clickhouse.client import probe_client
from livemetrics.settings import Settings

ANSWER_S = 2.0  # how long a readiness check waits for ClickHouse
PROBE_TIMEOUT_S = 5.0  # the probe client's connect and read timeouts: a hung server frees the probe thread
IDLE_S = 60.0  # the probe thread ends when nobody asked for this long


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class Probe:
    def __init__(self, settings: Settings, answer_s: float = ANSWER_S, timeout_s: float = PROBE_TIMEOUT_S):
        self.settings, self.answer_s, self.timeout_s = settings, answer_s, timeout_s
        self._lock = threading.Lock()
        self._current: Future[None] | None = None  # the probe asked for last (done, or in flight / queued)
        self._asks: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._client: Client | None = None  # the probe thread's only

    def check(self) -> tuple[bool, str | None]:
        """(answers?, why not) within ``answer_s``, waiting on this thread (the ops server's)."""
        try:
            self._ask().result(timeout=self.answer_s)
        except Exception as exc:  # noqa: BLE001 - any failure means not answering; said why
            return False, self._why(exc)
        return True, None

    async def acheck(self) -> tuple[bool, str | None]:
        """``check`` on an event loop, waiting on no thread of its own (shielded: a caller giving up does
        not cancel the probe that others wait for)."""
        probe = asyncio.wrap_future(self._ask())
        probe.add_done_callback(_retrieved)  # ended after the caller gave up: not "never retrieved"
        try:
            await asyncio.wait_for(asyncio.shield(probe), self.answer_s)
        except Exception as exc:  # noqa: BLE001 - any failure means not answering; said why
            return False, self._why(exc)
        return True, None

    def _why(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError | FutureTimeout):
            return f"ClickHouse does not answer (nothing within {self.answer_s:g} s)"
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return f"ClickHouse cannot answer: {text}"

    def _ask(self) -> Future[None]:
        """The probe under way, or the next one, started."""
        with self._lock:
            probe = self._current
            if probe is None or probe.done():
                probe = self._current = Future()
                self._asks.put(probe)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="clickhouse-probe", daemon=True)
                    self._thread.start()
            return probe

    def _serve(self) -> None:
        while True:
            try:
                probe = self._asks.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:  # check() starts another thread once this one is gone
                    if self._asks.empty():
                        self._thread = None
                        self._drop_client()
                        return
                continue
            if not probe.set_running_or_notify_cancel():
                continue
            try:
                client = self._client or probe_client(self.settings, self.timeout_s)
                if not self.settings.clickhouse_url.startswith("chdb:"):
                    self._client = client  # kept over HTTP; chdb's is this thread's (client.get_client)
                client.command("SELECT 1")
            except Exception as exc:  # noqa: BLE001 - told to whoever waits
                self._drop_client()
                probe.set_exception(exc)
            else:
                probe.set_result(None)

    def _drop_client(self) -> None:
        """A client that failed is not asked again (its connection may be the hung one)."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
