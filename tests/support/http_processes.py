"""An API or gateway process of its own for a test that talks raw HTTP to it (test_http_heads,
test_http_unread_responses): started, waited for until it answers, stopped with SIGTERM and its exit
checked."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from operations.command import livemetrics_argv
from tests.support.servers import wait_until


def start(argv: list[str], settings, log) -> subprocess.Popen:
    return subprocess.Popen(
        argv, env=settings.child_env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def answer(sock: socket.socket, within: float) -> bytes:
    """What the server sent until it closed the connection (at most ``within`` seconds)."""
    sock.settimeout(within)
    got = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return got
        if not chunk:
            return got
        got += chunk


def get(port: int, path: bytes) -> bytes:
    """A raw GET's whole answer, b"" when the connection failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET %b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
            return answer(s, 2)
    except OSError:
        return b""


@contextmanager
def running(
    argv: list[str], settings, log, port: int, ready_path: bytes, within_s: float
) -> Iterator[subprocess.Popen]:
    """The process, once ``ready_path`` answers 200 on ``port``; still running at the end, then stopped."""
    proc = start(argv, settings, log)
    try:
        wait_until(
            lambda: b" 200 " in get(port, ready_path),
            within_s,
            interval=0.2,
            what=f"{argv[-1]} answering {ready_path.decode()}",
            alive=lambda: proc.poll() is None,
        )
        yield proc
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful stop


def api_process(settings, tmp_path) -> AbstractContextManager[subprocess.Popen]:
    """``livemetrics api --no-sink`` on ``settings.api_port``, its own chdb directory under ``tmp_path``."""
    settings = settings.model_copy(
        update={"clickhouse_dsn": f"chdb://{tmp_path / 'ch'}", "data_dir": tmp_path / "api-data"}
    )
    return running(
        livemetrics_argv("api", "--no-sink"), settings, tmp_path / "api.log", settings.api_port, b"/healthz", 120
    )


def gateway_process(settings, tmp_path) -> AbstractContextManager[subprocess.Popen]:
    """``livemetrics gateway`` on ``settings.gateway_port``."""
    return running(
        livemetrics_argv("gateway"), settings, tmp_path / "gateway.log", settings.gateway_port, b"/readyz", 60
    )
