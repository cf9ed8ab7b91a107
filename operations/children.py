"""The processes ``livemetrics up`` (and ``bench e2e``) start: ``livemetrics <command>`` children and the
local broker, each in its own process group, tied to ``up`` by a parent-death signal (lifeline.py),
with its output in ``<data_dir>/logs/<name>.log`` and a restart policy (supervise.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from livemetrics import lifeline
from operations.command import livemetrics_argv
from operations.console import say
from operations.liveness import http_answers, kafka_answers
from operations.supervise import RestartPolicy, exit_reason


@dataclass
class Child:
    """One ``livemetrics <command>`` process in its own process group."""

    name: str
    args: list[str]
    log_dir: Path
    ready_url: str | None = None  # GET -> 200 when ready; None: see ``ready_check``
    ready_check: object = None  # callable () -> bool
    health_url: str | None = None  # GET answered (below 500) while it is not stopped or hung (liveness.py)
    proc: subprocess.Popen | None = None
    ready: bool = False
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None  # monotonic time of a pending restart
    started_at: float = 0.0  # monotonic time of its last (re)start

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self, env: dict[str, str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.ready, self.restart_at, self.started_at = False, None, time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                livemetrics_argv(*self.args),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only `up`
                preexec_fn=lifeline.preexec(),  # SIGTERM when `up` ends, however it ends
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def died(self) -> bool:
        """Started, not waiting for a restart, and no longer running."""
        return self.proc is not None and self.restart_at is None and self.proc.poll() is not None

    def reason(self) -> str:
        return exit_reason(self.proc.returncode if self.proc else None)

    def check_ready(self) -> bool:
        if not self.ready and self.alive():
            if self.ready_url:
                try:
                    self.ready = httpx.get(self.ready_url, timeout=2).status_code == 200
                except httpx.HTTPError:
                    self.ready = False
            elif callable(self.ready_check):
                self.ready = bool(self.ready_check())
            else:
                self.ready = True
        return self.ready

    def clear_group(self) -> None:
        """After the leader died: SIGTERM whatever is left of its group (grandchildren)."""
        if self.proc is not None:
            signal_group(self.proc.pid, signal.SIGTERM)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            signal_group(self.proc.pid, signal.SIGTERM)  # start_new_session: the child leads its group

    def reap(self, deadline: float) -> None:
        """Wait until ``deadline`` (monotonic) for a clean exit, then SIGKILL whatever is left of the
        group (grandchildren too)."""
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"  {self.name} did not stop in time: killed")
        signal_group(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, timeout: float = 20.0) -> None:
        self.terminate()
        self.reap(time.monotonic() + timeout)

    def kill(self) -> None:
        """SIGKILL the group at once (no clean shutdown: what a crash or the OOM killer does)."""
        if self.proc is not None and self.proc.poll() is None:
            signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def tail(self, n: int = 40) -> str:
        return tail(self.log_path, n)

    @property
    def watched(self) -> str | None:
        """What ``answers`` asks (for ``up``'s message), None when nothing is."""
        return self.health_url

    def answers(self, client: httpx.Client) -> bool:
        """It answered its health check now (liveness.py); False when it has none."""
        return bool(self.health_url) and http_answers(client, self.health_url)


class BrokerChild(Child):
    """The local broker as a supervised child: started (and restarted, on the same data directory)
    through LocalKafka, which waits until it answers."""

    def __init__(self, lk, log_dir: Path):
        super().__init__("kafka", [], log_dir)
        self.lk = lk

    @property
    def log_path(self) -> Path:
        return self.lk.log_file

    def start(self, env: dict[str, str] | None = None) -> BrokerChild:
        self.ready, self.restart_at, self.started_at = False, None, time.monotonic()
        self.message = self.lk.start(quiet=True, die_with_parent=True)  # jars from Maven Central on first use
        self.proc = self.lk.proc
        self.ready = True
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def watched(self) -> str:
        host, port = self.lk.host_port
        return f"Kafka requests on {host}:{port}"

    def answers(self, client: httpx.Client) -> bool:
        return kafka_answers(self.lk.host_port)

    def stop(self, timeout: float = 30.0) -> None:
        say(self.lk.stop(wait_s=timeout))


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return ""
