"""Ports for throw-away servers: never the kernel's ephemeral ones, never one another process was given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from operations.ports import free_port

HOLDER = "from operations.ports import free_port; import sys; print(free_port(), flush=True); sys.stdin.read()"


def test_ports_are_below_the_kernels_ephemeral_range():
    # bind(0) hands out ports of that range, free again the moment a server stops: a server brought back on
    # its port (a broker killed by a chaos test) could find another test's there
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(free_port() < low for _ in range(50))


def test_a_port_another_live_process_was_given_is_not_given_again_until_that_process_ends():
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        theirs = int(holder.stdout.readline())  # the holder's socket is closed: the port is bindable again
        # after `theirs`, enough others that one is free while the suite's other processes hold ports nearby
        mine = free_port(candidates=[theirs, *range(theirs + 1, theirs + 200)])
        assert mine != theirs
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert free_port(candidates=[theirs]) == theirs  # its holder ended: free again
    assert free_port(candidates=[theirs, *range(theirs + 200, theirs + 400)]) != theirs  # and now held by this process
