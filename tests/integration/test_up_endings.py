"""No process outlives `livemetrics up`, whatever ends it: Ctrl-C, SIGTERM, SIGHUP (its terminal
closed), a broken output pipe (``make run | tee run.log``, then Ctrl-C; or the reader just gone), and
SIGKILL of `up` itself, which no handler sees (the children's parent-death signal does it).

Each `up` runs its own broker and two gateway worker processes, so the tree has grandchildren: the
JVM and the gateway's workers. Every descendant seen while it ran must be gone within a bounded wait."""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from tests.support.up_process import Up, gone

pytestmark = pytest.mark.integration

# make test runs two endings of the issue (a closed terminal, SIGKILL of `up`); a broken pipe, Ctrl-C, SIGTERM
# and a reader simply gone take the same paths (signal handler, output watch) and run in make test-long.
_LONG = pytest.mark.long
ENDINGS = [
    pytest.param("SIGINT", marks=_LONG),
    pytest.param("SIGTERM", marks=_LONG),
    "SIGHUP",
    pytest.param("broken-pipe-then-ctrl-c", marks=_LONG),
    pytest.param("output-closed", marks=_LONG),
    "SIGKILL",
]


def _wait_banner_on_pipe(up: Up, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    seen = []
    for line in iter(up.proc.stdout.readline, b""):  # EOF if `up` died
        seen.append(line.decode(errors="replace"))
        if "livemetrics is up." in seen[-1]:
            return
        assert time.monotonic() < deadline, "".join(seen)[-3000:]
    raise AssertionError(f"up ended before it was up:\n{''.join(seen)[-3000:]}")


def _cmdlines(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(" ".join(p.cmdline()))
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.timeout(300)
@pytest.mark.parametrize("ending", ENDINGS)
def test_no_process_outlives_up(tmp_path, ending):
    piped = ending in ("broken-pipe-then-ctrl-c", "output-closed")
    up = Up(tmp_path / "data", ["--no-simulate"], pipe=piped, LIVEMETRICS_GATEWAY_WORKERS="2")
    try:
        _wait_banner_on_pipe(up) if piped else up.wait_up()
        everything = up.descendants()
        names = _cmdlines(everything)
        assert any("kafka.Kafka" in n for n in names), names
        assert sum("multiprocessing.spawn" in n for n in names) == 2, names  # the gateway's workers
        for cmd in ("worker", "gateway", "api"):
            assert any(n.endswith(f"-m livemetrics {cmd}") for n in names), names

        if ending == "SIGKILL":
            up.proc.kill()
        elif piped:
            up.proc.stdout.close()  # the reader (tee) is gone
            if ending == "broken-pipe-then-ctrl-c":
                up.proc.send_signal(signal.SIGINT)
        else:
            up.proc.send_signal(getattr(signal, ending))
        code = up.proc.wait(90)
        assert code == (-signal.SIGKILL if ending == "SIGKILL" else 0), up.text()[-3000:]
        left = gone(everything, 60)
        assert not left, f"left running after {ending}: {left}"
        assert not up.ours()
        if not piped:
            assert "Traceback" not in up.text()
    finally:
        up.kill_all()
