"""Children tied to their parent (livemetrics/lifeline.py), with real processes."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from livemetrics import lifeline

pytestmark = pytest.mark.skipif(not lifeline.supported(), reason="PR_SET_PDEATHSIG is Linux-only")

PARENT = """
import subprocess, sys
from livemetrics import lifeline
child = subprocess.Popen(["sleep", "300"], preexec_fn=lifeline.preexec() if sys.argv[1] == "tied" else None)
print(child.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("tied", [True, False])
def test_a_tied_child_ends_when_its_parent_is_sigkilled(tied):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, "tied" if tied else "free"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = psutil.Process(int(parent.stdout.readline()))
    try:
        parent.kill()
        parent.wait(10)
        if tied:
            child.wait(10)  # raises TimeoutExpired if it outlived its parent
        else:  # the control: without the tie the child outlives its parent
            with pytest.raises(psutil.TimeoutExpired):
                child.wait(1)
    finally:
        if child.is_running():
            child.kill()


def test_a_child_whose_parent_is_already_gone_exits_at_once():
    code = f"from livemetrics.lifeline import die_with_parent\ndie_with_parent({os.getpid()})\nprint('alive')"
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout == "alive\n"  # its parent is this test process
    code = "from livemetrics.lifeline import die_with_parent\ndie_with_parent(1)\nprint('alive')"
    gone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert gone.returncode == 1 and gone.stdout == ""  # "parent 1": re-parented, i.e. started by one now gone


STUBBORN = """
import signal, subprocess, sys, time
from livemetrics import lifeline
if sys.argv[1] == "parent":
    child = subprocess.Popen([sys.executable, "-c", __doc__ or "", "child", sys.argv[2]], preexec_fn=lifeline.preexec())
    print(child.pid, flush=True)
    sys.stdin.read()
else:  # a child whose stop hangs: it ignores the parent-death SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lifeline.exit_when_orphaned(float(sys.argv[2]), poll_s=0.05)
    print("ready", flush=True)  # the same pipe as the parent's
    time.sleep(300)
"""


@pytest.mark.parametrize("grace_s", [1.0, 0.0])
def test_an_orphan_whose_stop_hangs_ends_after_the_grace(grace_s):
    code = f"__doc__ = {STUBBORN!r}\n" + STUBBORN
    parent = subprocess.Popen(
        [sys.executable, "-c", code, "parent", str(grace_s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    child = psutil.Process(int(parent.stdout.readline()))
    assert parent.stdout.readline() == "ready\n"  # SIGTERM ignored and the watch started
    try:
        parent.kill()
        parent.wait(10)
        if grace_s:
            child.wait(15)  # ended by the deadline, though it ignored SIGTERM (raises if it did not)
        else:  # the control (the default, so that nohup keeps working): it stays
            with pytest.raises(psutil.TimeoutExpired):
                child.wait(2)
    finally:
        if child.is_running():
            child.kill()
