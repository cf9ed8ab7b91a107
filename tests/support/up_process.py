"""``livemetrics up`` (or another command that starts children) as a real process for tests: its own
free ports and data directory, its output in files, and every process it started found with psutil."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from operations.command import livemetrics_argv
from operations.ports import free_port
from tests.support.servers import wait_until


def up_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMETRICS_")}
    # except the tests' broker JVM options (tests/conftest.py: C1 only, half the CPU in a broker's first minute)
    if "LIVEMETRICS_KAFKA_JVM_OPTIONS" in os.environ:
        env["LIVEMETRICS_KAFKA_JVM_OPTIONS"] = os.environ["LIVEMETRICS_KAFKA_JVM_OPTIONS"]
    env.update(
        {
            "LIVEMETRICS_DATA_DIR": str(data_dir),
            "LIVEMETRICS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "LIVEMETRICS_KAFKA_CONTROLLER_PORT": str(free_port()),
            "LIVEMETRICS_KAFKA_HEAP": "512m",
            "LIVEMETRICS_GATEWAY_PORT": str(free_port()),
            "LIVEMETRICS_API_PORT": str(free_port()),
            "LIVEMETRICS_WORKER_METRICS_PORT": str(free_port()),
            "LIVEMETRICS_SINK_OPS_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
            # the tests' load comes from 127.0.0.1 with a few keys: browser-key limits are tested on their own
            "LIVEMETRICS_BROWSER_RATE_PER_S": "1000000",
            "LIVEMETRICS_CLIENT_IP_RATE_PER_S": "0",
            **extra,
        }
    )
    return env


class Up:
    """``livemetrics <args>`` (default ``up``) in its own session, as a terminal would start it."""

    def __init__(self, data_dir: Path, args: list[str], command: str = "up", pipe: bool = False, **env: str):
        self.data_dir = data_dir
        self.env = up_env(data_dir, **env)
        self.out = data_dir.parent / f"{command}.out"
        self.err = data_dir.parent / f"{command}.err"
        data_dir.mkdir(parents=True, exist_ok=True)
        streams = (
            dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if pipe
            else dict(stdout=open(self.out, "wb"), stderr=open(self.err, "wb"))
        )
        self.proc = subprocess.Popen(livemetrics_argv(command, *args), env=self.env, start_new_session=True, **streams)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['LIVEMETRICS_API_PORT']}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.env['LIVEMETRICS_GATEWAY_PORT']}"

    def text(self) -> str:
        read = lambda p: p.read_text(errors="replace") if p.exists() else ""  # noqa: E731
        return read(self.out) + read(self.err).replace("\r", "\n")

    def wait_up(self, timeout: float = 300) -> None:
        try:
            wait_until(
                lambda: "livemetrics is up." in self.out.read_text(),
                timeout,
                interval=0.5,
                what="livemetrics up",
                alive=lambda: self.proc.poll() is None,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.text()[-4000:]}") from None

    def sellers(self) -> dict:
        return json.loads(Path(glob.glob(str(self.data_dir / "up" / "sellers-*.json"))[0]).read_text())

    def ours(self) -> list[psutil.Process]:
        """Every process on this machine started for this `up` (they all carry its data dir)."""
        found = []
        for p in psutil.process_iter():
            try:
                if p.pid != self.proc.pid and p.environ().get("LIVEMETRICS_DATA_DIR") == str(self.data_dir):
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        return found

    def descendants(self) -> list[psutil.Process]:
        """`up`'s children and their children (gateway workers, the broker's JVM), while `up` runs."""
        return psutil.Process(self.proc.pid).children(recursive=True)

    def child(self, command: str) -> psutil.Process:
        """The running ``livemetrics <command>`` child of `up` (``kafka`` for the broker)."""
        for p in psutil.Process(self.proc.pid).children():
            try:
                cmd = p.cmdline()
            except psutil.NoSuchProcess:
                continue
            if (command == "kafka" and "kafka.Kafka" in cmd) or cmd[-1:] == [command] or cmd[-2:-1] == [command]:
                return p
        raise LookupError(f"no {command} child of up: {self.text()[-2000:]}")

    def kill_all(self) -> None:
        procs = self.ours() + ([psutil.Process(self.proc.pid)] if self.proc.poll() is None else [])
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def gone(procs: list[psutil.Process], timeout: float) -> list[str]:
    """Wait up to ``timeout`` s for every process to end; the command lines of those still running."""
    deadline = time.monotonic() + timeout
    left = procs
    while left and time.monotonic() < deadline:
        time.sleep(0.2)  # poll interval: process exits give no signal to a non-parent
        left = [p for p in left if _running(p)]
    return [" ".join(p.cmdline())[:160] for p in left if _running(p)]


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def post_page_view(gateway: str, browser_key: str, session_id: str) -> int:
    from tests.support import factories as f

    r = httpx.post(
        f"{gateway}/v1/events",
        json=f.page_view(session_id=session_id),
        timeout=15,
        headers={**f.browser_headers(browser_key), "Origin": gateway},
    )  # up's keys: its storefront's origin
    return r.status_code
