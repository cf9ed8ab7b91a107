"""Who holds a data directory or a port, so that a second process can say so instead of failing
obscurely (chdb's "Error initializing EmbeddedServer: . (BAD_ARGUMENTS)", uvicorn's errno 98).

A directory is claimed with an exclusive ``flock`` on ``<dir>.lock`` (next to it: chdb owns what is
inside) that holds the owner's pid and command line; the kernel drops the lock when its process ends,
however it ends, so a stale file never blocks anyone. A port's holder is found in ``/proc/net/tcp*``
(the listening socket's inode) and ``/proc/<pid>/fd`` (who has that socket open).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path


class InUse(RuntimeError):
    """A directory or port another process holds; the message names it (pid and command line)."""


def describe(pid: int) -> str:
    try:
        cmd = " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
    except OSError:
        cmd = ""
    return f"pid {pid} ({cmd})" if cmd else f"pid {pid}"


# --- directories ------------------------------------------------------------------------------
_held: dict[Path, int] = {}  # lock files this process holds -> their open descriptors (kept open)


def _lock_path(directory: Path, lock: Path | None = None) -> Path:
    if lock is not None:
        return Path(lock).resolve()
    d = Path(directory).resolve()
    return d.parent / f"{d.name}.lock"


def claim_dir(directory: Path, what: str, lock: Path | None = None) -> None:
    """Hold ``directory`` for the rest of this process's life, or raise InUse naming its holder.
    ``lock``: the lock file (default ``<directory>.lock``). Claiming again from the same process is a
    no-op."""
    path = _lock_path(directory, lock)
    if path in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)  # not inherited by children
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = holder_of_dir(directory, lock) or "another process"
        raise InUse(f"{what} {Path(directory).resolve()} is in use by {who}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n{describe(os.getpid())}\n".encode())
    _held[path] = fd


def holder_of_dir(directory: Path, lock: Path | None = None) -> str | None:
    """The holder of a claimed directory ("pid N (command line)"), or None when nobody holds it."""
    path = _lock_path(directory, lock)
    if path in _held:
        return describe(os.getpid())
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 64).split(b"\n", 1)[0].strip()
            return describe(int(pid)) if pid.isdigit() else "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def openers_of(directory: Path) -> list[int]:
    """Pids with a file under ``directory`` open (for an engine opened without our lock)."""
    d = str(Path(directory).resolve()) + "/"
    found = []
    for pid in _pids():
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(d):
                    found.append(pid)
                    break
        except OSError:
            continue
    return found


# --- ports ------------------------------------------------------------------------------------
def port_holders(port: int) -> list[int]:
    """Pids with a TCP socket listening on ``port`` (any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{f[9]}]")
    found = []
    for pid in _pids() if inodes else ():
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                found.append(pid)
        except OSError:
            continue
    return found


def check_port(host: str, port: int, what: str) -> None:
    """Raise InUse, naming the holder, when ``host:port`` cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no holder
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            pids = [p for p in port_holders(port) if p != os.getpid()]
            who = ", ".join(describe(p) for p in pids) or "another process (not visible to this user)"
            raise InUse(
                f"cannot listen on {host}:{port} for {what}: {exc.strerror}: port {port} is in use by {who}"
            ) from None


def _pids() -> list[int]:
    try:
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        return []
