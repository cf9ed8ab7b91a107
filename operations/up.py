"""``livemetrics up``: the whole one-machine stack of docs/architecture.md, started in order and supervised.

broker (unless ``--kafka``; the migrations run meanwhile) -> topics -> the migrations' end (a child that exits
before the API opens the chdb directory: chdb allows one process per data dir) -> worker, gateway, API (+ embedded sink, or a sink
process for a ClickHouse server) -> simulator. Every child runs in its own process group with its
output in ``<data_dir>/logs/<name>.log`` and dies with ``up`` (children.py, lifeline.py). A child
that dies, the broker included, is reported with its log tail and restarted after a backoff; one that
keeps dying makes ``up`` stop everything (supervise.py). Ctrl-C, SIGTERM, SIGHUP or the loss of its
output (a closed terminal or pipe) stop all of them, and the broker if ``up`` started it.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from livemetrics import lifeline
from livemetrics.holders import InUse
from livemetrics.settings import Settings
from operations.children import BrokerChild, Child
from operations.console import output_gone, say
from operations.liveness import Liveness

STOP_ORDER = ("simulate", "gateway", "api", "sink", "worker")  # producers of traffic first
DEMO_SHOP = "your-shop"  # the seller of the demo storefront at /demo/ (no simulated traffic)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, the terminal closed


def child_env(s: Settings) -> dict[str, str]:
    """The environment that makes a child process read exactly these settings, unbuffered."""
    # A child whose `up` is gone (even SIGKILLed) ends within this, whatever its stop is doing.
    return {
        **s.child_env(),
        "PYTHONUNBUFFERED": "1",
        "LIVEMETRICS_ORPHAN_EXIT_S": str(s.orphan_exit_s or lifeline.CHILD_ORPHAN_EXIT_S),
    }


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
    broker: BrokerChild | None = None  # the broker `up` started itself, if any
    sellers: dict = field(default_factory=dict)
    liveness: Liveness | None = None  # who answers /healthz: a stopped or hung child is killed (tend)

    @property
    def log_dir(self) -> Path:
        return self.settings.data_dir.resolve() / "logs"

    def ops_url(self, port: int, path: str) -> str | None:
        return self.url(port, path) if port else None

    def url(self, port: int, path: str = "") -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{port}{path}"

    # --- start ---------------------------------------------------------------------------------
    def start(self, external_kafka: bool) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        from operations.preflight import check_stack

        check_stack(s, own_broker=not external_kafka)  # raises InUse naming the holder
        steps = ["broker", "topics", "migrations", "sellers", "processes"]
        # The migrations need ClickHouse only: they run while the broker's JVM starts (8-9 s each on 2 busy
        # cores, one after the other before) and are waited for before anything opens the chdb directory.
        mig = Child("migrate", ["migrate"], self.log_dir).start(child_env(s))
        try:
            with tqdm(total=len(steps), desc="starting", unit="step", file=sys.stderr, leave=True) as bar:
                bar.set_description(f"Kafka broker on {s.kafka_bootstrap}")
                if not external_kafka:
                    from operations.kafka_local import LocalKafka

                    lk = LocalKafka(s)
                    if lk.pid() is not None and lk.answering():  # `livemetrics kafka start` on this data dir
                        tqdm.write(lk.start(quiet=True), file=sys.stderr)
                    else:
                        self.broker = BrokerChild(lk, self.log_dir)  # set first: an interrupted start is stopped too
                        tqdm.write(self.broker.start().message, file=sys.stderr)
                bar.update()
                self._checkpoint()
                bar.set_description("topics")
                from livemetrics.topics import create_topics

                created = create_topics(s)
                tqdm.write(f"topics: {len(created)} created" if created else "topics: all present", file=sys.stderr)
                bar.update()
                self._checkpoint()
                bar.set_description("ClickHouse migrations")
                while mig.alive():
                    self._checkpoint()
                    time.sleep(0.2)
                if mig.proc.returncode != 0:
                    raise StackError(f"migrations failed (exit {mig.proc.returncode}); {mig.log_path}:\n{mig.tail()}")
                bar.update()
                bar.set_description("sellers")
                from producers.simulate.catalog import SELLER_IDS
                from producers.simulate.sellers import ensure_demo_sellers

                # The simulated sellers, and one the simulator leaves alone: the demo shop's (served by the
                # gateway at /demo/ with its browser key), so a newcomer sees their own clicks on its dashboard.
                self.sellers = ensure_demo_sellers(s, (*SELLER_IDS, DEMO_SHOP))
                self.settings = s.model_copy(
                    update={"demo_storefront": True, "demo_browser_key": self.sellers[DEMO_SHOP]["browser_key"]}
                )
                bar.update()
                bar.set_description("processes")
                self._start_children()
                bar.update()
        finally:
            mig.stop()  # only does something when interrupted
        self._wait_ready()

    def _start_children(self) -> None:
        s = self.settings
        env = child_env(s)
        self.children = [
            # its /readyz (assigned, not rebalancing or recovering) when served, else the group's state
            Child(
                "worker",
                ["worker"],
                self.log_dir,
                ready_url=self.ops_url(s.worker_metrics_port, "/readyz"),
                ready_check=lambda: group_stable(s, s.app_id),
                health_url=self.ops_url(s.worker_metrics_port, "/healthz"),
            ),
            Child(
                "gateway",
                ["gateway"],
                self.log_dir,
                ready_url=self.url(s.gateway_port, "/readyz"),
                health_url=self.url(s.gateway_port, "/healthz"),
            ),
        ]
        api_urls = dict(ready_url=self.url(s.api_port, "/readyz"), health_url=self.url(s.api_port, "/healthz"))
        if s.clickhouse_embedded:  # the API owns the chdb directory and runs the sink
            self.children.append(Child("api", ["api"], self.log_dir, **api_urls))
        else:
            self.children += [
                Child(
                    "sink",
                    ["sink"],
                    self.log_dir,
                    ready_url=self.ops_url(s.sink_ops_port, "/readyz"),
                    ready_check=lambda: group_stable(s, s.sink_group),
                    health_url=self.ops_url(s.sink_ops_port, "/healthz"),
                ),
                Child("api", ["api", "--no-sink"], self.log_dir, **api_urls),
            ]
        for c in self.children:
            c.start(env)

    def _wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        with tqdm(total=len(self.children), desc="ready", unit="process", file=sys.stderr) as bar:
            while True:
                self._checkpoint()
                for c in self.children:
                    if bar.n < len(self.children) and not c.ready and c.check_ready():
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
            sim = Child(
                "simulate",
                [
                    "simulate",
                    "--gateway",
                    self.url(self.settings.gateway_port),
                    "--rate",
                    str(self.rate),
                    "--burst",
                    "25",
                    "--burst-at",
                    "40",
                ],
                self.log_dir,
            )
            self.children.append(sim.start(child_env(self.settings)))
            sim.ready = True

    def _checkpoint(self) -> None:
        if self.stop_requested.is_set():
            raise Interrupted
        self.tend()

    # --- supervise -----------------------------------------------------------------------------
    def tend(self) -> None:
        """Report each child that died and restart it when its backoff is over; raise GaveUp when one
        keeps dying (supervise.RestartPolicy). Runs on the main thread: the parent-death signal
        follows the thread that started a child."""
        env = None
        for c in ([self.broker] if self.broker else []) + self.children:
            now = time.monotonic()
            if c.restart_at is not None and now >= c.restart_at:
                try:
                    c.start(env or (env := child_env(self.settings)))
                    say(f"livemetrics up: {c.name} restarted (pid {c.pid})")
                except Exception as exc:  # noqa: BLE001 - a failed start counts as a death
                    self._died(c, f"could not start: {exc}")
            elif c.died():
                self._died(c, f"{c.reason()}; last lines of {c.log_path}:\n{c.tail()}")
            elif (
                self.liveness is not None
                and c.alive()
                and (silent := self.liveness.silent_s(c, now)) > self.settings.hung_child_s
            ):
                # Stopped or hung: it serves nobody and would never exit. SIGKILL (it works on a stopped
                # process too); the next round sees the death and restarts it after the usual backoff.
                say(
                    f"\nlivemetrics up: {c.name} (pid {c.pid}) has not answered {c.watched} for {silent:.0f} s "
                    "(stopped or hung): killing it"
                )
                c.kill()

    def _died(self, c: Child, why: str) -> None:
        say(f"\nlivemetrics up: {c.name} {why}")
        c.clear_group()  # its own children (gateway workers) go with it
        delay = c.policy.died(time.monotonic())
        if delay is None:
            raise GaveUp(f"{c.name} keeps dying ({c.policy.summary()}): stopping everything; see {c.log_path}")
        c.restart_at = time.monotonic() + delay
        say(f"livemetrics up: restarting {c.name} in {delay:g} s")

    def supervise(self) -> None:
        """Block until a stop signal or the loss of the output (returns) or GaveUp (raises)."""
        if self.settings.hung_child_s > 0:  # here, not in start: `bench e2e` starts a Stack and measures it
            self.liveness = Liveness(lambda: ([self.broker] if self.broker else []) + self.children).start()
        while not self.stop_requested.wait(0.5):
            if output_gone():
                say("livemetrics up: the terminal or pipe it writes to is gone: stopping")
                return
            self.tend()

    # --- run and stop --------------------------------------------------------------------------
    def banner(self) -> str:
        s = self.settings
        lines = [
            "",
            "livemetrics is up.",
            f"  gateway    {self.url(s.gateway_port, '/v1/events')}",
            f"  API        {self.url(s.api_port, '/docs')}",
            f"  logs       {self.log_dir}",
        ]
        ops = [("worker", s.worker_metrics_port)] + ([] if s.clickhouse_embedded else [("sink", s.sink_ops_port)])
        for name, port in ops:
            if port:
                lines.append(f"  {name:10} {self.url(port, '/metrics')}  (/healthz, /readyz)")
        lines.append(
            f"  demo shop  {self.url(s.gateway_port, '/demo/')}  (click around in one tab; open the dashboard as "
            f"{DEMO_SHOP} in another and watch your own session)"
        )
        lines.append(f"  dashboard  {self.url(s.api_port, '/dashboard/')}  (sign in with a seller's read token:)")
        for seller, keys in self.sellers.items():
            lines.append(f"    {seller:16} {keys['token']}")
        lines.append(f"  simulator  {'~%g events/s' % self.rate if self.simulate else 'off (--no-simulate)'}")
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)

    def stop(self, timeout: float = 20.0) -> None:
        """The simulator first (no new traffic), then the rest together; the broker last."""
        started = time.monotonic()
        if self.liveness is not None:
            self.liveness.stop()
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
            say(f"processes stopped in {time.monotonic() - started:.1f}s")
        if self.broker is not None:
            self.broker.stop()


class StackError(RuntimeError):
    pass


class Interrupted(Exception):
    pass


class GaveUp(RuntimeError):
    pass


def up(
    settings: Settings,
    simulate: bool = True,
    kafka: str | None = None,
    clickhouse: str | None = None,
    rate: float = 20.0,
) -> int:
    overrides = {}
    if kafka:
        overrides["kafka_bootstrap"] = kafka
    if clickhouse:
        overrides["clickhouse_dsn"] = clickhouse
    if simulate:  # the simulator sends every simulated shopper's events from this one address
        ip_rate = settings.client_ip_rate_per_s
        overrides["client_ip_rate_per_s"] = max(ip_rate, int(rate * 4)) if ip_rate else 0
        overrides["browser_rate_per_s"] = max(settings.browser_rate_per_s, int(rate * 4))
    # A development stack: its children may start with the built-in secrets (livemetrics/secrets_check.py).
    settings = settings.model_copy(update={**overrides, "dev_mode": True})
    say(
        "livemetrics up: development mode (LIVEMETRICS_DEV_MODE=true for every process it starts: "
        "built-in secrets allowed; production runs each process with `livemetrics secrets init`'s secrets)"
    )
    stack = Stack(settings, simulate=simulate, rate=rate)

    def on_signal(signum, _frame):
        stack.stop_requested.set()

    old = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    status = 0
    try:
        stack.start(external_kafka=bool(kafka))
        say(stack.banner(), sys.stdout)
        stack.supervise()
    except Interrupted:
        pass
    except InUse as exc:  # nothing was started
        say(f"livemetrics up: {exc}")
        status = 1
    except Exception as exc:  # noqa: BLE001 - GaveUp, a start-up failure: report it in words, then clean up
        say(f"\nlivemetrics up: {exc}")
        status = 1
    finally:
        started = bool(stack.children or stack.broker)
        if started:
            say("stopping ...")
        stack.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if started:
            say("stopped.")
    return status
