"""A benchmark that starts a broker and the stack (``bench e2e``) leaves nothing running when it is ended
during start-up: by ``timeout``'s SIGTERM as soon as its broker's JVM exists (the issue's case: the
broker used to stay), or by SIGKILL once the worker, gateway and API run too."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from operations.command import livemetrics_argv
from tests.support.up_process import gone, up_env

pytestmark = pytest.mark.integration


def _seen_until(proc: subprocess.Popen, ready, timeout: float = 180) -> list[psutil.Process]:
    """Every descendant of ``proc`` seen until ``ready(cmdlines)`` holds."""
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the benchmark ended on its own"
        for p in psutil.Process(proc.pid).children(recursive=True):
            seen.setdefault(p.pid, p)
        names = []
        for p in seen.values():
            try:
                names.append(" ".join(p.cmdline()))
            except psutil.NoSuchProcess:
                pass
        if ready(names):
            return list(seen.values())
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout}s: {names}")


def _broker(names: list[str]) -> bool:
    return any("kafka.Kafka" in n for n in names)


def _stack(names: list[str]) -> bool:
    return _broker(names) and all(
        any(n.endswith(f"-m livemetrics {c}") for n in names) for c in ("worker", "gateway", "api")
    )


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "sig,moment",
    [(signal.SIGTERM, _broker), (signal.SIGKILL, _stack)],
    ids=["SIGTERM-while-the-broker-starts", "SIGKILL-while-the-stack-starts"],
)
def test_bench_e2e_ended_during_start_up_leaves_nothing_running(tmp_path, sig, moment):
    env = up_env(tmp_path / "unused")
    proc = subprocess.Popen(
        livemetrics_argv("bench", "e2e", "--duration", "1"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "bench.err", "wb"),
        start_new_session=True,
    )
    seen = []
    try:
        seen = _seen_until(proc, moment)
        proc.send_signal(sig)
        code = proc.wait(60)
        assert code == (-sig if sig == signal.SIGKILL else 128 + sig), (tmp_path / "bench.err").read_text()[-3000:]
        left = gone(seen, 60)
        assert not left, f"left running: {left}"
    finally:
        for p in seen + [psutil.Process(proc.pid)] if proc.poll() is None else seen:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
