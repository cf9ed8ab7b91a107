"""A process's own scratch directory in the temporary directory, and the removal of dead processes' ones.

A process that writes temporary files per unit of work (the sink's batch files, ``clickhouse/events_json``)
and is killed between making and removing one (SIGKILL, the OOM killer, a chaos test) leaves it behind;
with one ``mkdtemp`` per batch in the temporary directory, nothing could tell a dead sink's folder from a
running one's, and they piled up (14 folders of up to 7 MB each in /tmp on the development machine).

Here each process makes one directory, ``<prefix>.<pid>.<random>`` in ``tempfile.gettempdir()``, holds an
exclusive ``flock`` on it for its whole life (the kernel drops it when the process ends, however it ends)
and then writes a marker file ``owner`` into it; its work files go inside. The first time a process makes
its directory it removes every ``<prefix>.*`` directory of its user whose lock it can take **and** that
holds the marker: its owner held the lock when it wrote the marker, so the lock is free only because that
owner has ended. A directory without the marker is one being made this instant (or by a process killed
between ``mkdtemp`` and its lock: an empty directory) and is left alone. Several processes on one machine
(several sinks, tests, an older checkout) never remove each other's live files. The directory of a process
that ends normally is removed at exit.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator

MARKER = "owner"


class ProcessScratch:
    """One process's scratch directory for ``prefix`` (made on first use, again after a fork or when removed
    from outside)."""

    def __init__(self, prefix: str):
        if not prefix or "/" in prefix or "." in prefix:
            raise ValueError(f"a scratch prefix is a plain name without dots: {prefix!r}")
        self.prefix = prefix
        self._lock = threading.Lock()
        self._path: str | None = None
        self._fd = -1
        self._pid = 0
        self._hooked = False

    def mkdtemp(self, prefix: str = "") -> str:
        """A new directory inside this process's scratch directory (the caller removes it)."""
        for _ in range(2):
            try:
                return tempfile.mkdtemp(prefix=prefix, dir=self.path())
            except FileNotFoundError:  # removed from outside (a tmp cleaner): make a new one
                with self._lock:
                    self._release()
        return tempfile.mkdtemp(prefix=prefix, dir=self.path())

    def path(self) -> str:
        """This process's scratch directory, made (and the dead processes' ones removed) on first use."""
        with self._lock:
            if self._path is not None and self._pid == os.getpid() and os.path.isdir(self._path):
                return self._path
            self._release()
            base = tempfile.gettempdir()
            remove_dead(base, self.prefix)
            path = tempfile.mkdtemp(prefix=f"{self.prefix}.{os.getpid()}.", dir=base)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while a sweeper looks at it (no marker yet: it leaves it)
            with open(os.path.join(path, MARKER), "w") as f:
                f.write(f"{os.getpid()}\n")
            if not self._hooked:
                atexit.register(self._at_exit)
                self._hooked = True
            self._path, self._fd, self._pid = path, fd, os.getpid()
            return path

    def _release(self) -> None:
        """Forget the current directory (removing it if this process made it)."""
        if self._path is not None and self._pid == os.getpid():
            shutil.rmtree(self._path, ignore_errors=True)
            os.close(self._fd)
        self._path, self._fd, self._pid = None, -1, 0

    def _at_exit(self) -> None:
        with self._lock:
            self._release()


def own_dirs(base: str, starting: str) -> Iterator[tuple[str, os.stat_result]]:
    """The directories in ``base`` whose names start with ``starting`` and that this user owns (a link is
    never one), with their ``lstat``; nothing when ``base`` cannot be listed."""
    try:
        names = [n for n in os.listdir(base) if n.startswith(starting)]
    except OSError:
        return
    uid = os.geteuid()
    for name in names:
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == uid:
            yield path, st


def remove_dead(base: str, prefix: str) -> list[str]:
    """Remove the ``<prefix>.*`` directories in ``base`` whose process has ended (see the module's text);
    returns their paths."""
    removed: list[str] = []
    for path, _ in own_dirs(base, prefix + "."):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is running
            if os.path.exists(os.path.join(path, MARKER)):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        finally:
            os.close(fd)
    return removed
