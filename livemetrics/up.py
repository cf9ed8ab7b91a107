"""``livemetrics up``: the whole one-machine stack of SPEC §2, started in order and supervised.

broker (unless ``--kafka``) -> topics -> migrations (a child that exits before the API opens the chdb
directory: chdb allows one process per data dir) -> worker, gateway, API (+ embedded sink, or a sink
process for a ClickHouse server) -> simulator. Every child runs in its own process group with its
output in ``<data_dir>/logs/<name>.log``; when one dies it is reported with its log tail and the rest
are stopped; Ctrl-C / SIGTERM stops all of them (and the broker, if ``up`` started it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tqdm import tqdm

from livemetrics.settings import Settings

STOP_ORDER = ("simulate", "gateway", "api", "sink", "worker")  # producers of traffic first


def child_env(s: Settings) -> dict[str, str]:
    """The environment that makes a child process read exactly these settings, unbuffered."""
    return {**s.child_env(), "PYTHONUNBUFFERED": "1"}


@dataclass
class Child:
    """One ``livemetrics <command>`` process in its own process group."""

    name: str
    args: list[str]
    log_dir: Path
    ready_url: str | None = None  # GET -> 200 when ready; None: see ``ready_check``
    ready_check: object = None  # callable () -> bool
    proc: subprocess.Popen | None = None
    ready: bool = False

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self, env: dict[str, str]) -> "Child":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "livemetrics.cli", *self.args], env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # Ctrl-C reaches only `up`
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)  # start_new_session: the child leads its group

    def reap(self, deadline: float) -> None:
        """Wait until ``deadline`` (monotonic) for a clean exit, then SIGKILL whatever is left of the
        group (grandchildren too)."""
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {self.name} did not stop in time: killed", file=sys.stderr)
        _signal_group(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, timeout: float = 20.0) -> None:
        self.terminate()
        self.reap(time.monotonic() + timeout)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_stable(settings: Settings, group: str) -> bool:
    """A consumer group has members and finished its rebalance (the worker and sink have no HTTP)."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    from livemetrics.kafka_config import admin_config

    admin = AdminClient(admin_config(settings))  # keep a reference: a collected client never completes its futures
    try:
        desc = admin.describe_consumer_groups([group], request_timeout=3)[group].result(timeout=5)
        return desc.state == ConsumerGroupState.STABLE and len(desc.members) > 0
    except Exception:  # noqa: BLE001 - group not there yet
        return False


@dataclass
class Stack:
    settings: Settings
    simulate: bool = True
    rate: float = 20.0
    stop_requested: threading.Event = field(default_factory=threading.Event)
    children: list[Child] = field(default_factory=list)
    broker = None  # the LocalKafka that `up` started itself, if any
    sellers: dict = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.settings.data_dir.resolve() / "logs"

    def url(self, port: int, path: str = "") -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{port}{path}"

    # --- start ---------------------------------------------------------------------------------
    def start(self, external_kafka: bool) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        steps = ["broker", "topics", "migrations", "sellers", "processes"]
        with tqdm(total=len(steps), desc="starting", unit="step", file=sys.stderr, leave=True) as bar:
            bar.set_description(f"Kafka broker on {s.kafka_bootstrap}")
            if not external_kafka:
                from livemetrics.kafka_local import LocalKafka

                lk = LocalKafka(s)
                already = lk.pid() is not None and lk.answering()
                msg = lk.start(quiet=True)  # downloads the jars from Maven Central on first use
                if not already:
                    self.broker = lk
                tqdm.write(msg, file=sys.stderr)
            bar.update()
            self._checkpoint()
            bar.set_description("topics")
            from livemetrics.topics import create_topics

            created = create_topics(s)
            tqdm.write(f"topics: {len(created)} created" if created else "topics: all present", file=sys.stderr)
            bar.update()
            self._checkpoint()
            bar.set_description("ClickHouse migrations")
            mig = Child("migrate", ["migrate"], self.log_dir).start(child_env(s))
            while mig.alive():
                self._checkpoint(mig)
                time.sleep(0.2)
            if mig.proc.returncode != 0:
                raise StackError(f"migrations failed (exit {mig.proc.returncode}); {mig.log_path}:\n{mig.tail()}")
            bar.update()
            bar.set_description("sellers")
            from producers.simulate.sellers import ensure_demo_sellers

            self.sellers = ensure_demo_sellers(s)
            bar.update()
            bar.set_description("processes")
            self._start_children()
            bar.update()
        self._wait_ready()

    def _start_children(self) -> None:
        s = self.settings
        env = child_env(s)
        self.children = [
            Child("worker", ["worker"], self.log_dir, ready_check=lambda: group_stable(s, s.app_id)),
            Child("gateway", ["gateway"], self.log_dir, ready_url=self.url(s.gateway_port, "/readyz")),
        ]
        if s.clickhouse_embedded:  # the API owns the chdb directory and runs the sink
            self.children.append(Child("api", ["api"], self.log_dir, ready_url=self.url(s.api_port, "/readyz")))
        else:
            self.children += [
                Child("sink", ["sink"], self.log_dir, ready_check=lambda: group_stable(s, s.sink_group)),
                Child("api", ["api", "--no-sink"], self.log_dir, ready_url=self.url(s.api_port, "/readyz")),
            ]
        for c in self.children:
            c.start(env)

    def _wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        with tqdm(total=len(self.children), desc="ready", unit="process", file=sys.stderr) as bar:
            while True:
                for c in self.children:
                    self._checkpoint(c)
                    if not c.ready and c.check_ready():
                        bar.update()
                        tqdm.write(f"  {c.name:8} ready (pid {c.pid}, log {c.log_path})", file=sys.stderr)
                pending = [c.name for c in self.children if not c.ready]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    raise StackError(f"not ready after {timeout:.0f}s: {', '.join(pending)}; see {self.log_dir}")
                bar.set_postfix_str("waiting for " + ", ".join(pending))
                time.sleep(0.5)
        if self.simulate:
            sim = Child("simulate", ["simulate", "--gateway", self.url(self.settings.gateway_port),
                                     "--rate", str(self.rate), "--burst", "25", "--burst-at", "40"], self.log_dir)
            self.children.append(sim.start(child_env(self.settings)))
            sim.ready = True

    def _checkpoint(self, child: Child | None = None) -> None:
        if self.stop_requested.is_set():
            raise Interrupted
        if child is not None and child.proc is not None and not child.alive():
            raise ChildDied(child)
        for c in self.children:
            if c.proc is not None and not c.alive():
                raise ChildDied(c)

    # --- run and stop --------------------------------------------------------------------------
    def banner(self) -> str:
        s = self.settings
        lines = ["", "livemetrics is up.",
                 f"  gateway    {self.url(s.gateway_port, '/v1/events')}",
                 f"  API        {self.url(s.api_port, '/docs')}",
                 f"  logs       {self.log_dir}"]
        lines.append(f"  dashboard  {self.url(s.api_port, '/dashboard/')}  (sign in with a seller's read token:)")
        for seller, keys in self.sellers.items():
            lines.append(f"    {seller:16} {keys['token']}")
        lines.append(f"  simulator  {'~%g events/s' % self.rate if self.simulate else 'off (--no-simulate)'}")
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)

    def supervise(self) -> None:
        """Block until Ctrl-C/SIGTERM (returns) or a child dies (raises ChildDied)."""
        while not self.stop_requested.wait(0.5):
            for c in self.children:
                if not c.alive():
                    raise ChildDied(c)

    def stop(self, timeout: float = 20.0) -> None:
        """The simulator first (no new traffic), then the rest together; the broker last."""
        started = time.monotonic()
        order = sorted(self.children, key=lambda c: STOP_ORDER.index(c.name) if c.name in STOP_ORDER else 99)
        for c in order:
            if c.name == "simulate":
                c.stop(timeout)
        rest = [c for c in order if c.name != "simulate"]
        for c in rest:
            c.terminate()
        deadline = time.monotonic() + timeout
        for c in rest:
            c.reap(deadline)
        if self.children:
            print(f"processes stopped in {time.monotonic() - started:.1f}s", file=sys.stderr)
        if self.broker is not None:
            print(self.broker.stop(), file=sys.stderr)


class StackError(RuntimeError):
    pass


class Interrupted(Exception):
    pass


class ChildDied(Exception):
    def __init__(self, child: Child):
        super().__init__(child.name)
        self.child = child


def up(settings: Settings, simulate: bool = True, kafka: str | None = None, clickhouse: str | None = None,
       rate: float = 20.0) -> int:
    overrides = {}
    if kafka:
        overrides["kafka_bootstrap"] = kafka
    if clickhouse:
        overrides["clickhouse_dsn"] = clickhouse
    settings = settings.model_copy(update=overrides)
    stack = Stack(settings, simulate=simulate, rate=rate)

    def on_signal(signum, _frame):
        stack.stop_requested.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        stack.start(external_kafka=bool(kafka))
        print(stack.banner(), flush=True)
        stack.supervise()
    except Interrupted:
        pass
    except ChildDied as exc:
        c = exc.child
        code = c.proc.returncode if c.proc else "?"
        print(f"\nlivemetrics up: {c.name} exited with code {code}; last lines of {c.log_path}:\n{c.tail()}",
              file=sys.stderr)
        status = 1
    except Exception as exc:  # noqa: BLE001 - report any start-up failure in words, then clean up
        print(f"\nlivemetrics up: {exc}", file=sys.stderr)
        status = 1
    finally:
        print("stopping ...", file=sys.stderr)
        stack.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        print("stopped.", file=sys.stderr)
    return status
