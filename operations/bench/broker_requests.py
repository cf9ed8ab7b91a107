"""Where the broker's CPU goes, for ``bench e2e --broker-requests``: its request counters read over JMX
(the JDK's attach API on the broker's pid, no JMX port opened) at a step's start and end, as rates.

Figures: ``broker_requests_per_s`` by request type (Fetch, Produce, Metadata, ...), ``broker_topic_requests_per_s``
by topic and kind (fetch / produce requests that named the topic), ``broker_topic_messages_in_per_s`` and
``broker_topic_bytes_out_per_s`` by topic, and ``broker_thread_cpu_cores`` by thread group (network, request
handlers, KRaft, ..., and the JVM's own: GC, JIT, VM thread). A fetch request names every partition its consumer reads, so a topic's fetch count
is how often some consumer of it asked, whatever it got. The reader is a small Java program (javac from
the JDK); without a JDK the step says so and goes on."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
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
