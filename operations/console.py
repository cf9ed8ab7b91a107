"""Output of a long-running command whose terminal or pipe may go away under it.

Closing the terminal (EIO after SIGHUP) or the reader of a pipe ending (``make run | tee run.log``,
then Ctrl-C: EPIPE) makes every later ``print`` raise; in ``up`` that used to happen on the way out,
before the children were stopped, and left them running. ``say`` never raises: once a stream fails it
is pointed at /dev/null for the rest of the process (the interpreter's own flush at exit included).
"""

from __future__ import annotations

import os
import select
import sys
from typing import TextIO


def say(text: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):
        _silence(stream)


def _silence(stream: TextIO) -> None:
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except (OSError, ValueError):
        pass


def output_gone() -> bool:
    """True when the reader of stdout or stderr has gone (a pipe whose read end was closed, a hung-up
    terminal): the kernel flags the writing end with POLLERR/POLLHUP. A regular file never is."""
    poller = select.poll()
    for stream in (sys.stdout, sys.stderr):
        try:
            poller.register(stream.fileno(), select.POLLOUT)
        except (OSError, ValueError):
            continue
    try:
        events = poller.poll(0)
    except OSError:
        return False
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in events)
