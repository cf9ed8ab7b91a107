"""Where the broker's CPU goes, for ``bench e2e --broker-requests``: its request counters read over JMX
(the JDK's attach API on the broker's pid, no JMX port opened) at a step's start and end, as rates.

Figures: ``broker_requests_per_s`` by request type (Fetch, Produce, Metadata, ...), ``broker_topic_requests_per_s``
by topic and kind (fetch / produce requests that named the topic), ``broker_topic_messages_in_per_s`` and
``broker_topic_bytes_out_per_s`` by topic, and ``broker_thread_cpu_cores`` by thread group (network, request
handlers, KRaft, ..., and the JVM's own: GC, JIT, VM thread). A fetch request names every partition its consumer reads, so a topic's fetch count
is how often some consumer of it asked, whatever it got. The reader is a small Java program (javac from
the JDK); without a JDK the step says so and goes on.

By client (``bench e2e --broker-clients``): the broker's request log (``kafka.request.logger`` at DEBUG,
``REQUEST_LOG_OPTION``: one JSON line per completed request, naming its API, client id and connection)
read over the step, each request's connection put to the process that held its client port
(``PortOwners``, sampling the stack's sockets), so every request type is counted per process and client:
``by_client``. Logging every request costs the broker CPU: a run with it gives counts, not the broker's CPU."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil

JAVA_SOURCE = r"""
import com.sun.tools.attach.VirtualMachine;
import javax.management.*;
import javax.management.openmbean.CompositeData;
import javax.management.remote.*;

public class BrokerCounters {
    public static void main(String[] a) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(a[0]);
        String addr = vm.startLocalManagementAgent();
        try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(addr))) {
            MBeanServerConnection s = c.getMBeanServerConnection();
            String[] q = {
                "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=*,version=*",
                "kafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec,topic=*",
                "kafka.server:type=BrokerTopicMetrics,name=TotalProduceRequestsPerSec,topic=*",
                "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=*",
                "kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec,topic=*",
            };
            for (String e : q)
                for (ObjectName n : s.queryNames(new ObjectName(e), null))
                    System.out.println("count\t" + n + "\t" + s.getAttribute(n, "Count"));
            ObjectName t = new ObjectName("java.lang:type=Threading");
            long[] ids = (long[]) s.getAttribute(t, "AllThreadIds");
            CompositeData[] infos = (CompositeData[]) s.invoke(t, "getThreadInfo", new Object[]{ids}, new String[]{"[J"});
            for (int i = 0; i < ids.length; i++) {
                if (infos[i] == null) continue;
                long cpu = (Long) s.invoke(t, "getThreadCpuTime", new Object[]{ids[i]}, new String[]{"long"});
                System.out.println("thread\t" + infos[i].get("threadName") + "\t" + cpu);
            }
        }
        vm.detach();
    }
}
"""
# Thread name -> group (the broker and its KRaft controller share the JVM here).
THREAD_GROUPS = (
    ("network", re.compile(r"network-thread|kafka-socket-acceptor")),
    ("request_handlers", re.compile(r"request-handler")),
    ("kraft", re.compile(r"raft|quorum-controller|metadata-loader|controller")),
    ("log_and_replica", re.compile(r"log-cleaner|kafka-scheduler|ReplicaFetcher|flush|LogDirFailure")),
    ("group_coordinator", re.compile(r"group-coordinator|transaction|share")),
)


class BrokerCounters:
    """Compiles the reader once (into ``workdir``); ``read(pid)`` returns the counters at that moment."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.error: str | None = None
        javac = shutil.which("javac")
        if not javac:
            self.error = "no javac (a JDK) on PATH"
            return
        src = workdir / "BrokerCounters.java"
        src.write_text(JAVA_SOURCE)
        done = subprocess.run([javac, "-d", str(workdir), str(src)], capture_output=True, text=True)
        if done.returncode:
            self.error = f"javac failed: {done.stderr[-500:]}"

    def read(self, pid: int) -> dict[str, dict[str, float]]:
        out = subprocess.run(
            [shutil.which("java") or "java", "-cp", str(self.dir), "BrokerCounters", str(pid)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode:
            raise RuntimeError(f"reading the broker's counters failed: {out.stderr[-500:]}")
        counters = parse(out.stdout)
        # The JVM's own threads (garbage collection, JIT compilers, VM thread) are no Java threads: what
        # the whole process used beyond the Java threads is theirs (rates() names it jvm_gc_jit_vm).
        cpu = psutil.Process(pid).cpu_times()
        counters["process_cpu_s"]["total"] = cpu.user + cpu.system
        return counters


def parse(text: str) -> dict[str, dict[str, float]]:
    """The reader's lines -> {family: {label: value}}: requests by type, per-topic counters, thread CPU (s)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in text.splitlines():
        kind, name, value = line.split("\t")
        if kind == "thread":
            group = next((g for g, pat in THREAD_GROUPS if pat.search(name)), "other")
            out["thread_cpu_s"][group] += int(value) / 1e9
            continue
        props = dict(p.split("=", 1) for p in name.split(":", 1)[1].split(","))
        if props.get("name") == "RequestsPerSec":
            out["requests"][props["request"]] += float(value)  # summed over versions
        elif "topic" in props:
            family = {
                "TotalFetchRequestsPerSec": "topic_fetch_requests",
                "TotalProduceRequestsPerSec": "topic_produce_requests",
                "MessagesInPerSec": "topic_messages_in",
                "BytesOutPerSec": "topic_bytes_out",
            }[props["name"]]
            out[family][props["topic"]] += float(value)
    return out


def rates(before: dict, after: dict, seconds: float) -> dict[str, dict[str, float]]:
    """Per second between two readings, dropping what did not move."""
    out: dict[str, dict[str, float]] = {}
    for family, values in after.items():
        moved = {k: (v - before.get(family, {}).get(k, 0.0)) / seconds for k, v in values.items()}
        out[family] = {k: v for k, v in sorted(moved.items(), key=lambda kv: -kv[1]) if v > 0}
    total = out.pop("process_cpu_s", {}).get("total")
    if total is not None:
        threads = out.setdefault("thread_cpu_s", {})
        threads["jvm_gc_jit_vm"] = max(0.0, total - sum(threads.values()))
    return out


# The broker's request log (slf4j-simple, the local broker's logger: operations/kafka_local.py) on its stderr,
# which is the broker's log file.
REQUEST_LOG_OPTION = "-Dorg.slf4j.simpleLogger.log.kafka.request.logger=debug"
_COMPLETED = "Completed request:"
# Request API keys -> names, for a log line that gives only the key.
API_NAMES = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    15: "DescribeGroups",
    16: "ListGroups",
    17: "SaslHandshake",
    18: "ApiVersions",
    19: "CreateTopics",
    22: "InitProducerId",
    32: "DescribeConfigs",
    36: "SaslAuthenticate",
    37: "CreatePartitions",
    60: "DescribeCluster",
    68: "ConsumerGroupHeartbeat",
    75: "DescribeTopicPartitions",
}


@dataclass(frozen=True)
class Logged:
    """One completed request from the broker's request log: its API, the client's id and port, and for a
    fetch whether its answer held no records (``empty``; None for other requests or when not said)."""

    api: str
    client_id: str
    port: int
    empty: bool | None = None


def _api_name(header: dict) -> str:
    name = header.get("requestApiKeyName")
    if name:  # e.g. "FETCH", "OFFSET_COMMIT" -> Fetch, OffsetCommit
        return "".join(part.capitalize() for part in str(name).split("_"))
    key = header.get("requestApiKey")
    return API_NAMES.get(key, f"api{key}") if isinstance(key, int) else "unknown"


def _fetch_empty(response: object) -> bool | None:
    """Whether a logged fetch answer carried no records (the log gives each partition's records' size)."""
    if not isinstance(response, dict) or not isinstance(response.get("responses"), list):
        return None
    sizes = [
        p.get("recordsSizeInBytes", p.get("records"))
        for t in response["responses"]
        if isinstance(t, dict)
        for p in t.get("partitions", [])
        if isinstance(p, dict)
    ]
    known = [s for s in sizes if isinstance(s, int)]
    return None if len(known) != len(sizes) else sum(known) == 0


def parse_request_log(text: str) -> list[Logged]:
    """The broker log's request lines (``REQUEST_LOG_OPTION``) -> one ``Logged`` per completed request;
    other lines, and a line cut at the read's end, are skipped."""
    out = []
    for line in text.splitlines():
        at = line.find(_COMPLETED)
        if at < 0:
            continue
        try:
            desc = json.loads(line[at + len(_COMPLETED) :])
        except ValueError:
            continue
        header = desc.get("requestHeader") or {}
        # "broker:port-client:port-index": the client's port is the second address's.
        parts = str(desc.get("connection", "")).split("-")
        port = int(parts[1].rsplit(":", 1)[1]) if len(parts) >= 2 and ":" in parts[1] else 0
        api = _api_name(header)
        out.append(
            Logged(
                api,
                str(header.get("clientId", "")),
                port,
                _fetch_empty(desc.get("response")) if api == "Fetch" else None,
            )
        )
    return out


class PortOwners:
    """Which process held each local port connected to the broker: samples the sockets of the given
    processes (and their children) every ``every_s`` in a thread, so that a request logged on a
    connection can be put to its process. A connection shorter than a sample's gap may be missed (its
    requests count under ``unknown``)."""

    def __init__(self, pids: dict[str, int], broker_port: int, every_s: float = 0.25):
        self.pids, self.broker_port, self.every_s = pids, broker_port, every_s
        self.owners: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="port-owners", daemon=True)

    def start(self) -> PortOwners:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                root = psutil.Process(pid)
                # The benchmark's own process started the stack's: its children are theirs, not its own.
                procs = [root] if pid == os.getpid() else [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    conns = proc.net_connections(kind="tcp")
                except psutil.Error:
                    continue
                for c in conns:
                    if c.raddr and c.raddr.port == self.broker_port:
                        self.owners[c.laddr.port] = name

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()


def by_client(requests: list[Logged], owners: dict[int, str]) -> dict[str, Counter[tuple[str, str, str]]]:
    """Counts of the logged requests: ``requests`` per (process, client id, API), and ``empty_fetches``
    per (process, client id, "Fetch") for fetches answered without records."""
    counts: Counter[tuple[str, str, str]] = Counter()
    empty: Counter[tuple[str, str, str]] = Counter()
    for r in requests:
        key = (owners.get(r.port, "unknown"), r.client_id, r.api)
        counts[key] += 1
        if r.empty:
            empty[key] += 1
    return {"requests": counts, "empty_fetches": empty}


class RequestLog:
    """The new part of the broker's log file since the last ``read``."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def read(self) -> list[Logged]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += end
        return parse_request_log(data[:end].decode("utf-8", "replace"))
