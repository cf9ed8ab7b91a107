"""Run the gateway and the API in-process (uvicorn in a thread) and the Faust worker as a process."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import uvicorn

from livemetrics.settings import Settings
from operations.children import Child
from operations.ports import free_port


class ThreadServer:
    def __init__(self, app, port: int | None = None, **config):
        self.port = port or free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws_ping_interval=None, **config)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout, what="the server's start")  # uvicorn sets a flag only
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


class WorkerProcess(Child):
    """``livemetrics worker`` in its own process group, as ``up`` runs it (``operations/children.py``:
    tied to the test process, output in ``<log_dir>/<name>.log``), with the settings given."""

    def __init__(self, s: Settings, log_dir: Path, name: str = "worker"):
        super().__init__(name, ["worker"], log_dir)
        self.settings = s

    def start(self, env: dict[str, str] | None = None) -> WorkerProcess:
        super().start(env or self.settings.child_env())
        return self

    def log_tail(self, n: int = 60) -> str:
        return self.tail(n)


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition", alive=None):
    """Poll ``pred`` until truthy; ``alive`` (optional) fails fast when a process we wait on died."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise AssertionError(f"process died while waiting for {what}")
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def stays(pred, seconds: float, what: str) -> None:
    """``pred`` holds at every poll for ``seconds`` (the opposite of ``wait_until``): the length is the
    check, as nothing signals that something did not happen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert pred(), f"{what} stopped holding"
        time.sleep(0.1)  # the poll interval: what is checked is that nothing changes for `seconds`


def get_json(url: str, token: str) -> dict:
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return r.json()
