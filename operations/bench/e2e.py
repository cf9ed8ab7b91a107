"""``livemetrics bench e2e``: the whole stack of ``livemetrics up`` (own broker and chdb unless
``--kafka``/``--clickhouse``) under a ladder of offered loads through the gateway, started once; each
step (``--ladder``, default 2k,5k,10k,15k,20k events/s) lasts ``--duration`` seconds.

Per step, every figure is labelled ``offered`` (events/s): ``e2e_sent_events_per_s`` (what the open-loop
generator sent: operations/bench/paced_load.py) with the generator's own proof (its CPU, how late its
sends left, sends that found every connection waiting for an answer) and ``generator_limited: true``
when it sent under 98 % of the offered rate; ``e2e_events_per_s`` (confirmed with 202);
``e2e_latency_p50_ms`` / ``_p99_ms`` (a probe page view's 202 -> the snapshot counting it on a
dashboard WebSocket), with two same-run ceilings: ``kafka_snapshot_latency_p50_ms`` / ``_p99_ms`` (202 ->
the snapshot on ``live-metrics`` itself: the worker's part) and ``probe_202_p99_ms`` (the probe's own POST
-> 202); ``consumer_lag_events`` when the load ends (label ``group``) and ``lag_drained_s`` (how long the
worker and sink then took to read and commit everything their partitions held when the load ended); ``cpu_s_per_1k_events`` per process (label ``process``;
from the step's start until its last probe was seen or given up, so work left over is charged to the
step that caused it); whether the stack had its cores (``--timeline PATH`` writes the same as a time series,
every 0.5 s, with each probe's latencies: ``Timeline``): ``runqueue_wait_s_per_s`` per process (seconds per
second its threads waited, runnable, for a core) and ``outside_cpu_cores`` (what ran beside the stack: other
work on the machine, which makes a step's figures incomparable). ``--broker-requests`` adds the broker's request rates and CPU by thread group
(operations/bench/broker_requests.py); ``--broker-clients`` every request type's rate per process and client
(``broker_client_requests_per_s``, from the broker's request log: that run's broker CPU is not comparable).

After the ladder, the baseline ``baseline_refresh_ms``: the same live question (sessions per location,
last 5 minutes) answered by querying ClickHouse over the raw events on every refresh, as Plausible and
Umami do. With embedded chdb the API process owns the data directory, so the baseline runs right after
the load on the same data, with the stack stopped (which flatters the baseline: it has both cores).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import websockets

from livemetrics.settings import Settings
from operations.bench import broker_requests, emit, paced_load
from operations.ports import free_port

BATCH = 100  # events per request, as a storefront's tracker batches them
DEFAULT_LADDER = "2k,5k,10k,15k,20k"  # offered events/s; `--ladder` (or `--rate` for one step) overrides
PROBE_EVERY_S = 0.5
OFFERED_HELD = 0.98  # a step whose generator sent less than this share of its rate is generator_limited
DRAIN_TIMEOUT_S = 60.0
BASELINE_SQL = """
SELECT loc, count() AS sessions FROM (
  SELECT session_id,
         argMaxIf(multiIf(type = 'checkout_started', 'checkout',
                          type IN ('payment_started', 'payment_failed'), 'payment',
                          type = 'payment_succeeded', 'purchased',
                          page_type = 'category', concat('category:', category),
                          page_type = 'offer', concat('offer:', offer_id), page_type),
                  received_at, type != 'heartbeat') AS loc
  FROM {db}.events
  WHERE seller_id = {seller:String} AND NOT is_bot AND NOT backfill
    AND received_at >= {now:DateTime64(3)} - INTERVAL 5 MINUTE
  GROUP BY session_id)
WHERE loc != 'purchased'
GROUP BY loc
"""

UA = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
}


def parse_rate(text: str) -> int:
    """``2000``, ``2k`` or ``1.5k`` -> events/s."""
    t = text.strip().lower()
    n = float(t[:-1]) * 1000 if t.endswith("k") else float(t)
    if n <= 0:
        raise ValueError(f"an offered rate must be positive: {text!r}")
    return int(n)


def ladder_of(args) -> list[int]:
    """The offered rates to run, in order: ``--ladder`` (comma-separated), else ``--rate``, else the default."""
    ladder = getattr(args, "ladder", None)
    if ladder:
        return [parse_rate(part) for part in ladder.split(",") if part.strip()]
    rate = getattr(args, "rate", None)
    return [int(rate)] if rate else [parse_rate(part) for part in DEFAULT_LADDER.split(",")]


def percentile(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank); NaN for no values."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


@dataclass
class Contention:
    """A step's share of the machine: per process, seconds per second its threads waited runnable for a
    core; the machine's busy cores, the stack's (generator included) and the hypervisor's stolen ones."""

    waited: dict[str, float]
    busy: float
    stack: float
    stolen: float = 0.0


def generator_limited(sent: int, offered: float, elapsed: float) -> bool:
    return sent < OFFERED_HELD * offered * elapsed


class SnapshotFollower:
    """The ceiling under the WebSocket figure: when each probe count first shows in a snapshot on
    ``live-metrics`` itself, read by a plain consumer in this process (what the worker takes, before the
    API). Starts at the topic's end offsets, read before the first probe is sent."""

    def __init__(self, settings: Settings, seller: str, place: str):
        from confluent_kafka import Consumer, TopicPartition

        from livemetrics.kafka_config import base_config

        self.seller, self.place = seller.encode(), place
        self.seen_at: dict[int, float] = {}
        self._stop = threading.Event()
        self._c = Consumer({**base_config(settings), "group.id": "unused", "enable.auto.commit": False})
        topic = settings.topic("live-metrics")
        parts = [TopicPartition(topic, p) for p in self._c.list_topics(topic, timeout=10).topics[topic].partitions]
        for tp in parts:
            tp.offset = self._c.get_watermark_offsets(tp, timeout=10)[1]
        self._c.assign(parts)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        best = 0
        while not self._stop.is_set():
            m = self._c.poll(0.05)
            if m is None or m.error() or m.key() != self.seller:
                continue
            count = json.loads(m.value())["live"]["category"].get(self.place, 0)
            now = time.monotonic()
            for k in range(best + 1, count + 1):
                self.seen_at[k] = now
            best = max(best, count)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._c.close()


async def _probe(
    settings: Settings,
    gateway: str,
    api: str,
    key: str,
    token: str,
    seller: str,
    place: str,
    stop_at: float,
    timeline: Timeline | None = None,
) -> dict:
    """One new session's page view on category ``place`` every PROBE_EVERY_S (a category no other event
    uses, so its live count starts at 0 and counts only the probes); per probe, its POST -> 202 time, its
    202 -> the WebSocket snapshot counting it (and its POST -> that snapshot: a 202 the gateway sends late, its
    loop waiting for a core, shortens the 202's figure, not this one), and its 202 -> the first such snapshot
    on Kafka."""
    ws_url = api.replace("http", "ws", 1) + f"/v1/sellers/{seller}/live/ws"  # token in the header, never the URL
    acked: dict[int, float] = {}
    posted: dict[int, float] = {}
    latencies: list[float] = []
    from_post: list[float] = []
    answers: list[float] = []
    follower = await asyncio.to_thread(SnapshotFollower, settings, seller, place)
    async with (
        websockets.connect(ws_url, max_size=None, additional_headers={"Authorization": f"Bearer {token}"}) as ws,
        httpx.AsyncClient(
            base_url=gateway, timeout=30, headers={**UA, "Origin": gateway, "Authorization": f"Bearer {key}"}
        ) as http,
    ):

        async def reader():
            seen = 0
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") != "snapshot":
                    continue
                count = msg["data"]["live"]["category"].get(place, 0)
                now = time.monotonic()
                for k in range(seen + 1, count + 1):
                    if k in acked:
                        latencies.append((now - acked[k]) * 1000)
                        from_post.append((now - posted[k]) * 1000)
                        if timeline:
                            timeline.note(
                                "probe",
                                n=k,
                                acked=round(acked[k], 3),
                                ws_ms=round(latencies[-1], 1),
                                post_ms=round(from_post[-1], 1),
                            )
                seen = max(seen, count)

        task = asyncio.create_task(reader())
        k = 0
        while time.monotonic() < stop_at:
            ev = {
                "event_id": str(uuid.uuid4()),
                "type": "page_view",
                "ts": int(time.time() * 1000),
                "session_id": f"probe-{uuid.uuid4().hex[:16]}",
                "page": {"type": "category", "category": place, "path": "/c"},
            }
            t = time.monotonic()
            r = await http.post("/v1/events", json=ev)
            if r.status_code == 202:
                k += 1
                acked[k] = time.monotonic()
                posted[k] = t
                answers.append((acked[k] - t) * 1000)
            await asyncio.sleep(PROBE_EVERY_S)
        deadline = time.monotonic() + 10  # the last probes may still be on their way
        while len(latencies) < k and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.05)
        task.cancel()
    await asyncio.to_thread(follower.close)
    on_kafka = [(t - acked[n]) * 1000 for n, t in follower.seen_at.items() if n in acked]
    for n, t in follower.seen_at.items():
        if timeline and n in acked:
            timeline.note("probe", n=n, acked=round(acked[n], 3), kafka_ms=round((t - acked[n]) * 1000, 1))
    return {"latencies": latencies, "answers": answers, "probes": k, "on_kafka": on_kafka, "from_post": from_post}


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each process with its descendants (a gateway's workers), except this process's:
    its descendants are the whole stack."""
    out = {}
    for name, pid in pids.items():
        try:
            p = psutil.Process(pid)
            procs = [p] + (p.children(recursive=True) if pid != os.getpid() else [])
            out[name] = sum(sum(q.cpu_times()[:2]) for q in procs)
        except psutil.NoSuchProcess:
            out[name] = 0.0
    return out


def _tasks(pid: int, descendants: bool) -> list[str]:
    """The /proc task directories of every thread of ``pid`` (and of its descendants)."""
    try:
        p = psutil.Process(pid)
        procs = [p] + (p.children(recursive=True) if descendants else [])
    except psutil.NoSuchProcess:
        return []
    out = []
    for q in procs:
        try:
            out += [f"/proc/{q.pid}/task/{tid}" for tid in os.listdir(f"/proc/{q.pid}/task")]
        except OSError:
            continue  # ended meanwhile
    return out


def _sched(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Per process (descendants included, as ``_cpu``): seconds its threads have run and seconds they have
    waited, runnable, for a core (Linux's per-thread ``schedstat``; threads that ended no longer count,
    so take differences over a window in which the processes' threads live on)."""
    out = {}
    for name, pid in pids.items():
        ran = waited = 0.0
        for task in _tasks(pid, pid != os.getpid()):
            try:
                fields = open(f"{task}/schedstat").read().split()
            except OSError:
                continue
            ran += int(fields[0]) / 1e9
            waited += int(fields[1]) / 1e9
        out[name] = (ran, waited)
    return out


def _machine() -> tuple[float, float]:
    """Seconds of CPU the whole machine has been busy (every process, this one's included), and stolen by
    the hypervisor."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return busy, getattr(t, "steal", 0.0)


def _rocksdb_ran(pid: int) -> float | None:
    """Seconds on a core of ``pid``'s RocksDB background threads (flushes, compactions: ``rocksdb:*``),
    None when it has none: they share the process's core share with its main thread."""
    total, seen = 0.0, False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if not f.read().startswith("rocksdb"):
                    continue
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
            seen = True
        except (OSError, ValueError):
            continue
    return total if seen else None


class Timeline:
    """``--timeline PATH``: the run as a time series, JSON lines appended to PATH. Every ``every_s`` a
    ``sample`` with cumulative counters (difference two samples for rates): per process (descendants
    included) ``cpu_s``, ``ran_s`` / ``waited_s`` (its threads' time on a core and runnable waiting for one)
    and ``main_ran_s`` / ``main_waited_s`` (its main thread's), ``rocksdb_ran_s`` for a process with RocksDB
    background threads (the worker: its flushes and compactions); the machine's ``busy_s`` and ``stolen_s``.
    Between them, ``step`` lines (a step starts) and ``probe`` lines (a probe's 202 time and its latency to
    the WebSocket, or to the snapshot on Kafka). Shows whether a backlog builds steadily or in stalls."""

    def __init__(self, path: Path, pids: dict[str, int], every_s: float = 0.5):
        self.pids, self.every_s = pids, every_s
        self._out = open(path, "a", buffering=1)  # noqa: SIM115 - closed by stop()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-timeline", daemon=True)

    def start(self) -> Timeline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        with self._lock:
            self._out.close()

    def note(self, kind: str, **fields) -> None:
        with self._lock:
            if not self._out.closed:
                self._out.write(json.dumps({"kind": kind, "t": round(time.monotonic(), 3), **fields}) + "\n")

    def sample(self) -> None:
        cpu, sched = _cpu(self.pids), _sched(self.pids)
        busy, stolen = _machine()
        processes = {}
        for name, pid in self.pids.items():
            try:
                main = open(f"/proc/{pid}/task/{pid}/schedstat").read().split()
            except OSError:
                main = ["0", "0"]
            processes[name] = {
                "cpu_s": round(cpu[name], 3),
                "ran_s": round(sched[name][0], 3),
                "waited_s": round(sched[name][1], 3),
                "main_ran_s": round(int(main[0]) / 1e9, 3),
                "main_waited_s": round(int(main[1]) / 1e9, 3),
            }
            rocksdb = _rocksdb_ran(pid)
            if rocksdb is not None:
                processes[name]["rocksdb_ran_s"] = round(rocksdb, 3)
        self.note("sample", busy_s=round(busy, 3), stolen_s=round(stolen, 3), processes=processes)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)


def _offsets(settings: Settings, group: str) -> dict[tuple[str, int], tuple[int, int]]:
    """Every partition ``group`` has committed an offset on: (its committed offset, the partition's high
    watermark)."""
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    from livemetrics.kafka_config import admin_config, consumer_config

    admin = AdminClient(admin_config(settings))  # a short-lived process (see livemetrics/kafka_config.py)
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=10)
    c = Consumer(consumer_config(settings, f"bench-lag-{uuid.uuid4().hex[:6]}"))
    try:
        out = {}
        for tp in res.topic_partitions:
            if tp.offset < 0:
                continue
            _, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            out[(tp.topic, tp.partition)] = (tp.offset, high)
        return out
    finally:
        c.close()


def _warm_up(gateway: str, api: str, keys: dict, seller: str, timeout: float = 120.0) -> None:
    """Measure a running pipeline, not the worker's first partition assignment: one page view must be
    counted live before the clock starts."""
    ev = {
        "event_id": str(uuid.uuid4()),
        "type": "page_view",
        "ts": int(time.time() * 1000),
        "session_id": f"warmup-{uuid.uuid4().hex[:12]}",
        "page": {"type": "home", "path": "/"},
    }
    httpx.post(
        f"{gateway}/v1/events",
        json=ev,
        headers={**UA, "Origin": gateway, "Authorization": f"Bearer {keys['browser_key']}"},
        timeout=30,
    ).raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = httpx.get(
            f"{api}/v1/sellers/{seller}/live", headers={"Authorization": f"Bearer {keys['token']}"}, timeout=10
        ).json()
        if snap["live"].get("home", 0) >= 1:
            return
        time.sleep(0.2)
    raise RuntimeError("the pipeline did not count a warm-up event within 120 s")


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """The run's directory (the broker's log, chdb's data, the processes' logs: ~0.6 GB after a ladder):
    removed once the run ended well, so that runs do not fill the disk; kept after one that failed, for
    its logs, and named on stderr. Whoever used chdb on it has closed it (``_run``)."""
    tmp = Path(tempfile.mkdtemp(prefix="lm-bench-e2e-"))
    try:
        yield tmp
    except BaseException:
        print(f"bench e2e: the stack's logs and data are kept in {tmp}", file=sys.stderr)
        raise
    shutil.rmtree(tmp, ignore_errors=True)


def run(args) -> int:
    ladder = ladder_of(args)
    with scratch_dir() as tmp:
        _run(args, ladder, tmp)
    return 0


def _run(args, ladder: list[int], tmp: Path) -> None:
    from operations.up import Stack

    duration = float(args.duration)
    settings = Settings(
        dev_mode=True,  # a throw-away development stack (livemetrics/secrets_check.py)
        data_dir=tmp,
        kafka_bootstrap=args.kafka or f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        gateway_port=free_port(),
        api_port=free_port(),
        worker_metrics_port=free_port(),  # the default ports may be another stack's: readiness asks these
        sink_ops_port=free_port(),
        clickhouse_dsn=args.clickhouse or "",
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}." if args.kafka else "",
        app_id=f"lm-bench-{uuid.uuid4().hex[:6]}",
        sink_group=f"sink-bench-{uuid.uuid4().hex[:6]}",
        clickhouse_database=f"lm_bench_{uuid.uuid4().hex[:6]}",
        browser_rate_per_s=1_000_000,
        client_ip_rate_per_s=0,  # one load client: no browser limits
    )
    by_client = bool(getattr(args, "broker_clients", False)) and not args.kafka
    if by_client:  # the broker logs every request (its own CPU then counts the logging)
        opts = f"{settings.kafka_jvm_options} {broker_requests.REQUEST_LOG_OPTION}"
        settings = settings.model_copy(update={"kafka_jvm_options": opts})
    stack = Stack(settings, simulate=False)
    timeline: Timeline | None = None
    try:
        stack.start(external_kafka=bool(args.kafka))
        gateway, api = stack.url(settings.gateway_port), stack.url(settings.api_port)
        pids = {c.name: c.pid for c in stack.children}
        if stack.broker is not None:
            pids["kafka"] = stack.broker.pid
        pids["generator"] = os.getpid()  # the load and the probe: this process
        counters = None
        if getattr(args, "broker_requests", False) and stack.broker is not None:
            counters = broker_requests.BrokerCounters(tmp)
            if counters.error:
                print(f"bench e2e: no broker request counters: {counters.error}", file=sys.stderr)
                counters = None
        _warm_up(gateway, api, stack.sellers["acme-home"], "acme-home")
        if getattr(args, "timeline", None):
            timeline = Timeline(Path(args.timeline), pids).start()
        for rung, offered in enumerate(ladder):
            # Each step's probes go to a category of their own: its live count starts at 0.
            place = f"probe-{rung}-{offered}"
            log = broker_requests.RequestLog(stack.broker.log_path) if by_client and stack.broker else None
            _step(settings, stack, gateway, api, pids, offered, duration, place, counters, timeline, log)
    finally:
        if timeline:
            timeline.stop()
        stack.stop()
    _baseline(settings)
    from clickhouse.client import close_all

    # The baseline's chdb client holds files of the run's directory, which goes next. (Closing chdb ends
    # it for the whole process: only the benchmark's own process may do this.)
    close_all()


def _step(
    settings: Settings,
    stack,
    gateway: str,
    api: str,
    pids: dict[str, int],
    offered: int,
    duration: float,
    place: str,
    counters: broker_requests.BrokerCounters | None = None,
    timeline: Timeline | None = None,
    request_log: broker_requests.RequestLog | None = None,
):
    """One rung of the ladder: ``offered`` events/s for ``duration`` s, then its figures."""
    if timeline:
        timeline.note("step", offered=offered)
    before = counters.read(pids["kafka"]) if counters else None
    owners = None
    if request_log is not None:
        request_log.read()  # what the warm-up or the previous step's end logged
        clients = {k: v for k, v in pids.items() if k != "kafka"}
        owners = broker_requests.PortOwners(clients, int(settings.kafka_bootstrap.rsplit(":", 1)[1])).start()
    load_keys = [stack.sellers[s]["browser_key"] for s in ("nordic-outdoor", "tiny-books")]
    probe = stack.sellers["acme-home"]
    port = int(gateway.rsplit(":", 1)[1])
    cpu0, sched0, machine0 = _cpu(pids), _sched(pids), _machine()
    t0 = time.monotonic()

    groups = (settings.app_id, settings.sink_group)
    at_stop: dict = {}

    async def load_then_lag():
        load = await paced_load.offer(port, load_keys, UA["User-Agent"], offered, duration, batch=BATCH)
        at_stop["elapsed"] = time.monotonic() - t0
        at_stop["gen_cpu"] = _cpu({"generator": pids["generator"]})["generator"] - cpu0["generator"]
        # The lag when the load ends (not after the probe's wait for its last snapshots), then how long
        # the worker and the sink took to read everything from there.
        stopped = time.monotonic()
        offsets = await asyncio.to_thread(lambda: {g: _offsets(settings, g) for g in groups})
        at_stop["lags"] = {g: sum(max(0, h - c) for c, h in o.values()) for g, o in offsets.items()}
        ends = {g: {key: high for key, (_, high) in o.items()} for g, o in offsets.items()}
        at_stop["drained"] = await asyncio.to_thread(_drain, settings, stopped, ends)
        return load

    async def drive():
        return await asyncio.gather(
            _probe(
                settings,
                gateway,
                api,
                probe["browser_key"],
                probe["token"],
                "acme-home",
                place,
                t0 + duration,
                timeline,
            ),
            load_then_lag(),
        )

    seen, load = asyncio.run(drive())
    if request_log is not None and owners is not None:
        owners.stop()
        _report_clients(offered, request_log.read(), owners.owners, time.monotonic() - t0)
    if counters and before is not None:
        _report_broker(offered, broker_requests.rates(before, counters.read(pids["kafka"]), time.monotonic() - t0))
    cpu1, sched1, machine1 = _cpu(pids), _sched(pids), _machine()
    window = time.monotonic() - t0
    cpu = {name: cpu1[name] - cpu0[name] for name in pids}
    waited = {name: (sched1[name][1] - sched0[name][1]) / window for name in pids}
    busy, stolen = ((b - a) / window for a, b in zip(machine0, machine1))
    contention = Contention(waited, busy, sum(cpu.values()) / window, stolen)
    report_step(
        offered,
        duration,
        at_stop["elapsed"],
        load,
        seen,
        at_stop["lags"],
        at_stop["drained"],
        cpu,
        at_stop["gen_cpu"],
        contention,
    )


def report_step(
    offered: int,
    duration: float,
    elapsed: float,
    load: paced_load.LoadCounts,
    seen: dict,
    lags: dict[str, int],
    drained: float,
    cpu: dict[str, float],
    gen_cpu: float,
    contention: Contention | None = None,
) -> list[dict]:
    """Print one step's figures, each labelled with its ``offered`` rate and ``generator_limited``."""
    events = load.accepted + len(seen["answers"])
    labels = {"offered": offered, "generator_limited": generator_limited(load.sent, offered, duration)}
    lat = seen["latencies"]
    rows = [
        emit(
            "e2e",
            "e2e_sent_events_per_s",
            load.sent / duration,
            "events/s",
            **labels,
            generator_cpu_cores=round(gen_cpu / elapsed, 3),
            send_late_p99_ms=round(percentile(load.late_ms, 99), 1),
            sends_blocked=load.blocked,  # the stack pushed back: every connection was waiting for an answer
            batch=BATCH,
        ),
        emit("e2e", "e2e_events_per_s", events / duration, "events/s", **labels, errors=load.errors),
        emit("e2e", "e2e_latency_p50_ms", percentile(lat, 50), "ms", **labels, probes=seen["probes"], seen=len(lat)),
        emit("e2e", "e2e_latency_p99_ms", percentile(lat, 99), "ms", **labels, probes=seen["probes"], seen=len(lat)),
        # The same from the probe's POST: a stack that answers 202 late (the gateway waiting for a core) and
        # shows the event soon after makes the 202's figure look better than what the storefront sees.
        emit("e2e", "e2e_post_latency_p99_ms", percentile(seen.get("from_post", []), 99), "ms", **labels),
        # The ceilings under those, in the same run: 202 -> the snapshot on Kafka (the worker's part, before
        # the API), and the probe's own POST -> 202 on the same loaded machine.
        emit("e2e", "kafka_snapshot_latency_p50_ms", percentile(seen.get("on_kafka", []), 50), "ms", **labels),
        emit("e2e", "kafka_snapshot_latency_p99_ms", percentile(seen.get("on_kafka", []), 99), "ms", **labels),
        emit("e2e", "probe_202_p99_ms", percentile(seen["answers"], 99), "ms", **labels),
    ]
    rows += [emit("e2e", "consumer_lag_events", n, "events", **labels, group=g) for g, n in lags.items()]
    rows.append(emit("e2e", "lag_drained_s", drained, "s", **labels, timeout_s=DRAIN_TIMEOUT_S))
    for name, seconds in cpu.items():
        rows.append(
            emit("e2e", "cpu_s_per_1k_events", seconds / max(events, 1) * 1000, "cpu s", **labels, process=name)
        )
    if contention is not None:
        # Whether a process had the cores it asked for: the seconds per second its threads were runnable
        # and waited for a core (the worker's main thread waiting is what builds the live backlog), and
        # what ran beside the stack on the same machine (other work's load, which the load average mixes
        # with the stack's own).
        for name, share in contention.waited.items():
            rows.append(emit("e2e", "runqueue_wait_s_per_s", share, "s/s", **labels, process=name))
        rows.append(
            emit(
                "e2e",
                "outside_cpu_cores",
                max(0.0, contention.busy - contention.stack),
                "cores",
                **labels,
                machine_busy_cores=round(contention.busy, 2),
                stack_cores=round(contention.stack, 2),
                stolen_cores=round(contention.stolen, 2),
            )
        )
    return rows


def _report_broker(offered: int, per_s: dict[str, dict[str, float]]) -> None:
    """The broker's request rates over the step (operations/bench/broker_requests.py)."""
    for request, n in per_s.get("requests", {}).items():
        emit("e2e", "broker_requests_per_s", n, "requests/s", offered=offered, request=request)
    for kind in ("fetch", "produce"):
        for topic, n in per_s.get(f"topic_{kind}_requests", {}).items():
            emit("e2e", "broker_topic_requests_per_s", n, "requests/s", offered=offered, kind=kind, topic=topic)
    for topic, n in per_s.get("topic_messages_in", {}).items():
        emit("e2e", "broker_topic_messages_in_per_s", n, "messages/s", offered=offered, topic=topic)
    for topic, n in per_s.get("topic_bytes_out", {}).items():
        emit("e2e", "broker_topic_bytes_out_per_s", n, "bytes/s", offered=offered, topic=topic)
    for group, n in per_s.get("thread_cpu_s", {}).items():
        emit("e2e", "broker_thread_cpu_cores", n, "cores", offered=offered, threads=group)


def _report_clients(offered: int, logged: list, owners: dict[int, str], seconds: float) -> None:
    """Every request type's rate per process and client id over the step (``--broker-clients``); a fetch's
    ``empty`` is how many of them were answered without records."""
    counts = broker_requests.by_client(logged, owners)
    for (process, client, request), n in sorted(counts["requests"].items(), key=lambda kv: -kv[1]):
        emit(
            "e2e",
            "broker_client_requests_per_s",
            n / seconds,
            "requests/s",
            offered=offered,
            process=process,
            client=client,
            request=request,
            empty_per_s=round(counts["empty_fetches"].get((process, client, request), 0) / seconds, 2),
        )


Ends = dict[str, dict[tuple[str, int], int]]  # per group, per partition: its high watermark at a moment


def _ends(settings: Settings) -> Ends:
    """Where every partition the worker and the sink have committed on ends now (its high watermark)."""
    groups = (settings.app_id, settings.sink_group)
    return {g: {key: high for key, (_, high) in _offsets(settings, g).items()} for g in groups}


def _drain(settings: Settings, since: float, ends: Ends | None = None) -> float:
    """Seconds from ``since`` until the worker and the sink have read and committed everything their
    partitions held at ``ends`` (taken now if not given; NaN if not within the timeout). Committed offsets
    trail reading by up to a commit interval, which this includes.

    Not "until their lag is 0": the worker's group also reads its own internal topics (session ticks, live
    deltas), which it keeps writing after the load ends and commits within its commit interval, so its lag
    is 0 only at lucky moments (a lag of 1 on a tick partition read 17.6 s after a 15k step whose events
    were all read within ~2 s: BENCHMARKS.md, thirteenth session)."""
    ends = ends if ends is not None else _ends(settings)
    while time.monotonic() - since < DRAIN_TIMEOUT_S:
        if all(
            offsets.get(key, (-1, 0))[0] >= end
            for group, group_ends in ends.items()
            for offsets in [_offsets(settings, group)]
            for key, end in group_ends.items()
        ):
            return time.monotonic() - since
        time.sleep(0.2)
    return float("nan")


def _baseline(settings: Settings, refreshes: int = 20) -> None:
    """The same live question over raw events, once per dashboard refresh."""
    from clickhouse.client import get_client

    client = get_client(settings)
    db = settings.clickhouse_database
    now = client.query(f"SELECT max(received_at) FROM {db}.events").result_rows[0][0]
    rows = client.query(f"SELECT count() FROM {db}.events WHERE seller_id = 'nordic-outdoor'").result_rows[0][0]
    sql = BASELINE_SQL.replace("{db}", db)
    times = []
    for _ in range(refreshes):
        t = time.perf_counter()
        client.query(sql, parameters={"seller": "nordic-outdoor", "now": now})
        times.append((time.perf_counter() - t) * 1000)
    emit(
        "e2e",
        "baseline_refresh_ms",
        statistics.median(times),
        "ms",
        seller_rows=rows,
        refreshes=refreshes,
        note="same data, stack stopped" if settings.clickhouse_embedded else "server",
    )
