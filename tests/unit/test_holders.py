"""Who holds a directory or a port (livemetrics/holders.py), with real processes holding them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from livemetrics import holders
from livemetrics.holders import InUse
from tests.support.services import free_port


def _holder(code: str) -> subprocess.Popen:
    """A process that runs ``code``, prints "ready" and waits for its stdin to close."""
    script = textwrap.dedent(code) + "\nprint('ready', flush=True)\nsys.stdin.read()\n"
    p = subprocess.Popen(
        [sys.executable, "-c", "import sys\n" + script, "holder-marker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "ready"
    return p


def _end(p: subprocess.Popen) -> None:
    p.stdin.close()
    p.wait(10)


def test_a_claimed_directory_names_its_holder_and_is_free_once_it_ends(tmp_path):
    d = tmp_path / "chdb"
    p = _holder(f"from livemetrics.holders import claim_dir\nclaim_dir({str(d)!r}, 'x')")
    try:
        with pytest.raises(InUse, match=rf"the dir {d} is in use by pid {p.pid} \(.*holder-marker\)"):
            holders.claim_dir(d, "the dir")
        assert f"pid {p.pid}" in holders.holder_of_dir(d)
    finally:
        _end(p)
    assert holders.holder_of_dir(d) is None
    holders.claim_dir(d, "the dir")
    holders.claim_dir(d, "the dir")  # again from the same process: no-op
    assert holders.holder_of_dir(d).startswith("pid ")


def test_a_port_in_use_names_the_listening_process(tmp_path):
    port = free_port()
    p = _holder(f"import socket\ns = socket.socket()\ns.bind(('127.0.0.1', {port}))\ns.listen()")
    try:
        assert holders.port_holders(port) == [p.pid]
        with pytest.raises(
            InUse,
            match=rf"cannot listen on 127.0.0.1:{port} for the API: Address already in use: "
            rf"port {port} is in use by pid {p.pid} \(.*holder-marker\)",
        ):
            holders.check_port("127.0.0.1", port, "the API")
    finally:
        _end(p)
    holders.check_port("127.0.0.1", port, "the API")  # free again


def test_openers_of_a_directory_are_found(tmp_path):
    f = tmp_path / "d" / "status"
    f.parent.mkdir()
    p = _holder(f"fh = open({str(f)!r}, 'w')")
    try:
        assert p.pid in holders.openers_of(tmp_path / "d")
    finally:
        _end(p)
