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
