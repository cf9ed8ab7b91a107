"""The chaos test's pieces (tests/integration/test_chaos.py): the settings of a ``livemetrics up`` run, one
kill of one of its processes with the signal that it serves again, and what ClickHouse holds after it.

chdb allows one data directory per process (and the test process may already hold another one), so
ClickHouse is read by a short child process (``python -m tests.support.chaos <data_dir>``) once ``up``
has stopped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from livemetrics.settings import Settings
from tests.support.servers import wait_until
from tests.support.up_process import Up, post_page_view


def up_settings(up: Up) -> Settings:
    """What `up`'s children read (its environment), for Kafka clients of the test."""
    env = {k.removeprefix("LIVEMETRICS_").lower(): v for k, v in up.env.items() if k.startswith("LIVEMETRICS_")}
    return Settings(**env)


@dataclass
class Kill:
    """One SIGKILL: what was killed and how long until it served again."""

    what: str
    pid: int
    killed_at: float
    back_s: float = 0.0


def _acked(fronts) -> int:
    return sum(len(fr.acked_events()) for fr in fronts)


def _next_202(up: Up, fronts, since: int, timeout: float, what: str) -> None:
    wait_until(lambda: _acked(fronts) > since, timeout, interval=0.05, what=what, alive=lambda: up.proc.poll() is None)


def gateway_workers(up: Up) -> list[psutil.Process]:
    """The gateway's worker processes: children of the `livemetrics gateway` child started by
    multiprocessing's spawn (not its resource tracker, also a child)."""
    found = []
    try:
        for p in up.child("gateway").children():
            try:
                if p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.NoSuchProcess:
                pass
    except (LookupError, psutil.NoSuchProcess):
        pass
    return found


class LiveProbe:
    """A seller outside the load: each ``counted()`` posts one new session and waits until the live
    snapshot counts it (the worker consumed it and the API received the worker's snapshot)."""

    def __init__(self, up: Up, seller: str):
        self.up, self.seller, self.sessions = up, seller, 0
        self.key, self.token = up.sellers()[seller]["browser_key"], up.sellers()[seller]["token"]

    def active(self) -> int:
        try:
            r = httpx.get(
                f"{self.up.api}/v1/sellers/{self.seller}/live",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=10,
            )
        except httpx.HTTPError:
            return -1
        return r.json()["active_sessions"] if r.status_code == 200 else -1

    def counted(self, timeout: float) -> None:
        self.sessions += 1
        sid = f"chaos-probe-{self.sessions:04d}"
        answers: list = []
        try:
            wait_until(lambda: _accepted(self.up, self.key, sid, answers), 60, interval=0.5, what="the probe's 202")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: answers {answers[-5:]}") from None
        wait_until(
            lambda: self.active() >= self.sessions,
            timeout,
            interval=0.2,
            what=f"live count of {sid}",
            alive=lambda: self.up.proc.poll() is None,
        )


def _accepted(up: Up, key: str, sid: str, answers: list) -> bool:
    try:
        answers.append(post_page_view(up.gateway, key, sid))
    except httpx.HTTPError as exc:
        answers.append(repr(exc))
    return answers[-1] == 202


def kill_child(up: Up, name: str, fronts, probe: LiveProbe, timeout: float = 180) -> Kill:
    """SIGKILL `up`'s child ``name`` (``kafka``, ``worker``, ``api``) and wait for it to serve again: `up`
    says it restarted it, then the broker takes events again (a 202), the restarted worker counts a new
    session live, the API's /readyz answers 200."""
    marks = up.text().count(f"{name} restarted")
    old = up.child(name)
    acked = _acked(fronts)
    old.kill()
    k = Kill(name, old.pid, time.monotonic())
    alive = lambda: up.proc.poll() is None  # noqa: E731
    wait_until(
        lambda: up.text().count(f"{name} restarted") > marks,
        timeout,
        interval=0.2,
        what=f"up restarting {name}",
        alive=alive,
    )
    if name == "kafka":
        _next_202(up, fronts, acked, timeout, "a 202 after the broker's restart")
    elif name == "worker":
        probe.counted(timeout)
    else:

        def ready() -> bool:
            try:
                return httpx.get(f"{up.api}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, interval=0.2, what=f"{name} /readyz", alive=alive)
    k.back_s = time.monotonic() - k.killed_at
    return k


def kill_gateway_worker(up: Up, fronts, timeout: float = 120) -> Kill:
    """SIGKILL one gateway worker process; back when its replacement runs and a 202 came after it started."""
    workers = gateway_workers(up)
    assert len(workers) >= 2, f"expected 2 gateway workers, found {len(workers)}"
    victim, others = workers[0], {p.pid for p in workers[1:]}
    victim.kill()
    k = Kill("gateway worker", victim.pid, time.monotonic())
    wait_until(
        lambda: len({p.pid for p in gateway_workers(up)} - others - {victim.pid}) == 1,
        timeout,
        interval=0.1,
        what="a new gateway worker",
        alive=lambda: up.proc.poll() is None,
    )
    _next_202(up, fronts, _acked(fronts), timeout, "a 202 after the gateway worker's replacement started")
    k.back_s = time.monotonic() - k.killed_at
    return k


def statuses(fronts) -> Counter:
    return sum((fr.statuses for fr in fronts), start=Counter())


def clickhouse_event_counts(data_dir: Path, sellers: list[str], timeout: float = 120) -> dict:
    """For these sellers' rows in ClickHouse's events, read by a child process (see above): ``ids``
    (event_id -> rows) and ``same_position`` (Kafka topic/partition/offset stored more than once:
    windows of offsets, so a sink that stored a message twice is told from a retried request, the data
    parts holding the copies, and how many of those positions hold different events)."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.chaos", str(data_dir), *sellers],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def keep(up: Up) -> Path:
    """Copy a failed run's evidence where pytest does not remove it (it keeps only its last 3 temporary
    directories, and CI's clean clone goes): `up`'s output, every process's log (the broker's included),
    the ClickHouse data directory (the parts, the sink's offsets, the event keys). Returns where."""
    kept = Path(tempfile.gettempdir()) / f"livemetrics-chaos-kept-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    kept.mkdir(parents=True, exist_ok=True)
    for f in (up.out, up.err):
        if f.exists():
            shutil.copy2(f, kept / f.name)
    for sub in ("logs", "clickhouse"):
        if (up.data_dir / sub).is_dir():
            shutil.copytree(up.data_dir / sub, kept / sub, symlinks=True, dirs_exist_ok=True)
    for log in (up.data_dir / "kafka").glob("*.log"):  # the broker's own log (not its data)
        shutil.copy2(log, kept / f"kafka-{log.name}")
    return kept


def _print_counts(data_dir: str, sellers: list[str]) -> None:
    from clickhouse.client import get_client

    s = Settings(data_dir=Path(data_dir))
    shops = ", ".join(f"'{x}'" for x in sellers)
    db, client = s.clickhouse_database, get_client(s)
    rows = client.query(
        f"SELECT toString(event_id), count() FROM {db}.events WHERE seller_id IN ({shops}) GROUP BY event_id"
    ).result_rows
    twice = client.query(
        # with the data parts holding the copies (a copy in another insert's part, or a part loaded beside
        # the merged part that covers it, tell a sink that inserted twice from parts read twice) and how
        # many of the positions hold different events (not one message stored twice: two messages at one
        # position, i.e. Kafka's offsets given out again, or rows from another broker)
        f"SELECT kafka_topic, kafka_partition, min(kafka_offset), max(kafka_offset), count(), "
        f"groupUniqArrayArray(12)(parts), countIf(ids > 1) FROM ("
        f"SELECT kafka_topic, kafka_partition, kafka_offset, groupArray(_part) AS parts, "
        f"uniqExact(event_id) AS ids FROM {db}.events "
        f"WHERE seller_id IN ({shops}) GROUP BY kafka_topic, kafka_partition, kafka_offset HAVING count() > 1) "
        f"GROUP BY kafka_topic, kafka_partition ORDER BY 1, 2"
    ).result_rows
    print(json.dumps({"ids": {eid: n for eid, n in rows}, "same_position": [list(r) for r in twice]}))


if __name__ == "__main__":
    _print_counts(sys.argv[1], sys.argv[2:])
