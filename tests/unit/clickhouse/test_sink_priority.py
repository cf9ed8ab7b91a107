"""``sink_nice``: the process that runs the sink lowers its CPU priority when it leads its own session (as
``livemetrics up`` starts it), and leaves a process that shares its session (a test run, a shell's job)
alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, os, threading
from clickhouse.sink_priority import lower_priority
done = lower_priority(int(os.environ["NICE"]))
later = {}
t = threading.Thread(target=lambda: later.update(nice=os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
t.start(); t.join()
try:
    group = open("/proc/self/autogroup").read().split()[-1]
except OSError:
    group = None
print(json.dumps({"done": done, "nice": os.getpriority(os.PRIO_PROCESS, 0), "later": later["nice"], "group": group}))
"""


def _run(nice: int, own_session: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"NICE": str(nice), "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
        capture_output=True,
        check=True,
        start_new_session=own_session,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_a_session_leader_lowers_its_autogroup_and_every_thread():
    got = _run(5, own_session=True)
    assert got["done"] is True
    expected = max(5, os.getpriority(os.PRIO_PROCESS, 0))  # never raised above where it was started
    assert got["nice"] == expected and got["later"] == expected  # threads started afterwards inherit it
    if got["group"] is not None:  # a kernel with autogroups: the process's weight among the others
        assert got["group"] == "5"


def test_a_process_sharing_its_session_or_nice_0_is_left_alone():
    for nice, own in ((5, False), (0, True)):
        got = _run(nice, own_session=own)
        assert got["done"] is False
        here = os.getpriority(os.PRIO_PROCESS, 0)
        assert got["nice"] == here and got["later"] == here
