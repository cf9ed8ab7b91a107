"""A real single-node Apache Kafka (KRaft) for one machine, provisioned from Maven Central.

The broker's runtime classpath is resolved once by Maven into ``<cache_dir>/kafka-<version>/lib`` and
reused by every later start. State and logs live under ``<data_dir>/kafka``.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from livemetrics.kafka_config import as_admin
from livemetrics.settings import Settings
from operations.kafka_secure import format_args, listener_lines

SLF4J_BINDING = ("org.slf4j", "slf4j-simple", "1.7.36")  # Kafka's own slf4j-api is 1.7.x


class KafkaLaunchError(RuntimeError):
    """Why the local broker could not be provisioned or started, in words an operator can act on."""


@dataclass
class LocalKafka:
    settings: Settings
    proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)  # the broker this object started

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.settings.kafka_bootstrap.split(",")[0].rpartition(":")
        return host or "127.0.0.1", int(port)

    @property
    def home(self) -> Path:
        return self.settings.data_dir.resolve() / "kafka"

    @property
    def lib_dir(self) -> Path:
        return self.settings.cache_dir.expanduser().resolve() / f"kafka-{self.settings.kafka_version}" / "lib"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    # --- provisioning ------------------------------------------------------------------------
    def check_tools(self) -> None:
        java = shutil.which("java")
        if not java:
            raise KafkaLaunchError(
                "Java 17+ is needed for the local Kafka broker: install a JDK (e.g. apt-get install -y openjdk-17-jre-headless)"
            )
        out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
        try:
            major = int(out.split('"')[1].split(".")[0])
        except (IndexError, ValueError):
            major = 0
        if major < 17:
            raise KafkaLaunchError(
                f"Java 17+ is needed for the local Kafka broker; found: {out.splitlines()[0] if out else 'unknown'}"
            )
        if not self.lib_dir.exists() and not shutil.which("mvn"):
            raise KafkaLaunchError(
                "Maven is needed once to download the Kafka broker from Maven Central: apt-get install -y maven"
            )

    def provision(self, quiet: bool = False) -> Path:
        """Resolve the broker's runtime classpath into the cache (once)."""
        self.check_tools()
        marker = self.lib_dir / ".complete"
        if marker.exists():
            return self.lib_dir
        work = self.lib_dir.parent
        work.mkdir(parents=True, exist_ok=True)
        g, a, v = SLF4J_BINDING
        (work / "pom.xml").write_text(
            f"""<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>livemetrics</groupId><artifactId>kafka-runtime</artifactId><version>1</version><packaging>pom</packaging>
<dependencies>
<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{self.settings.kafka_version}</version></dependency>
<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>
</dependencies></project>
"""
        )
        if not quiet:
            print(
                f"Downloading Apache Kafka {self.settings.kafka_version} from Maven Central (once) ...", file=sys.stderr
            )
        cmd = [
            "mvn",
            "-B",
            "-f",
            str(work / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={self.lib_dir}",
            "-DincludeScope=runtime",
        ]
        returncode, output = _run_with_progress(cmd, quiet)
        if returncode != 0:
            raise KafkaLaunchError(f"Maven could not resolve Kafka {self.settings.kafka_version}:\n{output[-4000:]}")
        marker.write_text("ok\n")
        return self.lib_dir

    def _properties(self) -> Path:
        host, port = self.host_port
        cport = self.settings.kafka_controller_port
        props = self.home / "server.properties"
        props.touch(mode=0o600)
        props.chmod(0o600)  # secure mode writes the admin password into it
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{host}:{cport}",
                    *listener_lines(self.settings, host, port, cport),
                    f"log.dirs={self.home / 'data'}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "group.initial.rebalance.delay.ms=0",
                    # Topics are created explicitly by `livemetrics kafka start` / the worker.
                    "auto.create.topics.enable=false",
                    "log.retention.check.interval.ms=60000",
                    "",
                ]
            )
        )
        return props

    def _java(self, *args: str, heap: str | None = None) -> list[str]:
        cmd = [shutil.which("java") or "java"]
        if heap:
            cmd += [f"-Xms{heap}", f"-Xmx{heap}", *self.settings.kafka_jvm_options.split()]
        else:  # a one-shot tool (the storage format): C2 and a parallel collector never pay off in its few seconds;
            # C1 alone and the serial collector: 1.5-2 s instead of 2.5-7.5 s on 2 busy cores (each `up`, each cluster node)
            cmd += ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
        cmd += [
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
            "-cp",
            f"{self.lib_dir}/*",
            *args,
        ]
        return cmd

    def format_storage(self, props: Path, cluster_id: str | None = None) -> None:
        if self.check_formatted():
            return
        # Kafka's cluster id is a url-safe base64 UUID; one starting with "-" would be read as an option
        # by the storage tool's argument parser, so pass it as `--cluster-id=<id>`.
        cid = cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        proc = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cid}",
                "-c",
                str(props),
                "--standalone",
                "--ignore-formatted",
                *format_args(self.settings),
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise KafkaLaunchError(f"kafka storage format failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        self.security_marker.write_text(self.settings.kafka_security + "\n")

    @property
    def security_marker(self) -> Path:
        return self.home / "data" / "livemetrics-security"

    def check_formatted(self) -> bool:
        """True when the storage is formatted for this security mode; an error when it is formatted for the
        other one (SCRAM users exist only if they were added when the storage was formatted)."""
        if not (self.home / "data" / "meta.properties").exists():
            return False
        try:
            formatted = self.security_marker.read_text().strip()
        except FileNotFoundError:
            formatted = "plaintext"  # formatted before secure mode existed
        if formatted != self.settings.kafka_security:
            raise KafkaLaunchError(
                f"the broker's data in {self.home / 'data'} was formatted for LIVEMETRICS_KAFKA_SECURITY={formatted}, "
                f"not {self.settings.kafka_security}: use that mode, or stop the broker and remove {self.home} "
                "(its topics go with it)"
            )
        return True

    # --- lifecycle ---------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def answering(self, timeout: float = 0.5) -> bool:
        try:
            with socket.create_connection(self.host_port, timeout=timeout):
                return True
        except OSError:
            return False

    def start(self, wait_s: float = 60.0, quiet: bool = False, die_with_parent: bool = False) -> str:
        """Start the broker unless it already runs; return a one-line status. ``die_with_parent``: the
        broker gets SIGTERM when this process ends, however it ends (``up``, benchmarks); without it
        (``livemetrics kafka start``) it runs on until ``kafka stop``."""
        if self.pid() and self.answering():
            return f"kafka already running (pid {self.pid()}) on {self.settings.kafka_bootstrap}"
        if self.answering():
            from livemetrics.holders import describe, port_holders

            who = ", ".join(describe(p) for p in port_holders(self.host_port[1])) or "another process"
            raise KafkaLaunchError(
                f"port {self.host_port[1]} is taken by {who}; set LIVEMETRICS_KAFKA_BOOTSTRAP to a free port "
                "or point it at that broker"
            )
        self.provision(quiet=quiet)
        proc = self.launch(die_with_parent)
        return self.wait_ready(proc, wait_s)

    def prepare(self) -> Path:
        """Write the config and format the storage (once); the config's path."""
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            props = self._properties()
            self.format_storage(props)
        except ValueError as exc:  # a missing or unusable principal password (kafka_config.role_password)
            raise KafkaLaunchError(str(exc)) from None
        return props

    def launch(self, die_with_parent: bool = False) -> subprocess.Popen:
        """Write the config, format the storage (once) and start the JVM without waiting for it (a
        cluster's nodes only answer once a quorum of them runs: kafka_cluster.py launches them all first)."""
        props = self.prepare()
        from livemetrics import lifeline

        with open(self.log_file, "ab") as log:
            proc = self.proc = subprocess.Popen(
                self._java("kafka.Kafka", str(props), heap=self.settings.kafka_heap),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=lifeline.preexec() if die_with_parent else None,  # java execs directly: no script between
            )
        self.pid_file.write_text(str(proc.pid))
        return proc

    def wait_ready(self, proc: subprocess.Popen, wait_s: float) -> str:
        """Wait until the broker ``proc`` answers with metadata; stop it and say why when it does not."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise KafkaLaunchError(f"broker exited with {proc.returncode}; see {self.log_file}:\n{self._tail()}")
            if self.answering() and self._metadata_ok():
                mode = ", SASL/SCRAM logins only" if self.settings.kafka_security == "sasl" else ""
                return f"kafka {self.settings.kafka_version} running (pid {proc.pid}) on {self.settings.kafka_bootstrap}{mode}"
            time.sleep(0.3)
        self.stop()
        raise KafkaLaunchError(f"broker did not answer within {wait_s:.0f}s; see {self.log_file}:\n{self._tail()}")

    def _metadata_ok(self) -> bool:
        from confluent_kafka.admin import AdminClient

        from livemetrics.kafka_config import admin_config

        try:
            md = AdminClient(admin_config(as_admin(self.settings))).list_topics(timeout=2)
            return bool(md.brokers)
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False

    def _tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def stop(self, wait_s: float = 30.0) -> str:
        pid = self.pid()
        if not pid:
            return "kafka not running"
        os.killpg(pid, signal.SIGTERM) if _is_group_leader(pid) else os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self.pid():
            time.sleep(0.2)
        if self.pid():
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return f"kafka stopped (pid {pid})"

    def status(self) -> str:
        pid = self.pid()
        if pid and self.answering():
            return f"running (pid {pid}) on {self.settings.kafka_bootstrap}, logs {self.log_file}"
        if pid:
            return f"starting or unhealthy (pid {pid}); logs {self.log_file}"
        if self.answering():
            return f"not managed here, but a broker answers on {self.settings.kafka_bootstrap}"
        return "stopped"


def _alive(pid: int) -> bool:
    """True while the process runs. A broker started by this very process (tests, `livemetrics up`)
    stays a zombie after it exits until it is reaped, and a zombie still answers kill(pid, 0)."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reaps it if it is our child and has exited
    except ChildProcessError:
        pass  # not our child: init reaps it
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc: trust kill(pid, 0)


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _run_with_progress(cmd: list[str], quiet: bool) -> tuple[int, str]:
    """Run Maven, counting the files it downloads on a progress line (minutes of silence otherwise);
    return its exit code and its output (for the error message)."""
    from tqdm import tqdm

    lines: list[str] = []
    bar = tqdm(desc="  Kafka jars from Maven Central", unit=" files", file=sys.stderr, disable=quiet, mininterval=0.5)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Downloaded from") or line.startswith("[INFO] Copying "):
                bar.update(1)
        returncode = proc.wait()
    bar.close()
    return returncode, "".join(lines[-200:])
